/**
 * Alerts: what a researcher or operator must hear about without watching the dashboard.
 *
 * - Kinds: a finding settled `suppressed` / `rejected` / `altered` / `delayed`; a finding
 *   ended (its adverse segment closed); a probe silent past a threshold; dead letters
 *   appearing at a probe (each new count).
 * - Detection runs on the sweep and is idempotent (db/alerts.ts); an alert is queued for
 *   every webhook that wants its kind at the time it is detected, so adding a webhook
 *   later does not replay history.
 * - Delivery: POST with a body in the webhook's format (generic JSON; Slack's `{text}`;
 *   Matrix hookshot's `{text, html}`), signed with the webhook's secret:
 *   `x-silentdrop-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
 *   A non-2xx answer or a network error is retried with exponential backoff and jitter,
 *   up to `maxAttempts`; then the delivery is given up and shown in the webhook list.
 * - Alerts carry probe ids, countries and ASNs, never addresses (the collector has none).
 */
import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { AlertKind, WebhookFormat } from '../protocol/index.ts';
import { claimDueDeliveries, type DueDelivery, detectAlerts, recordDelivery } from './db/alerts.ts';
import type { Db } from './db/open.ts';

export interface AlertOptions {
  /** A probe with no check-in for this long is reported silent (default 15 minutes). */
  probeSilentAfterMs?: number;
  /** Deliveries attempted per sweep (default 20). */
  batch?: number;
  /** First retry after this long, doubling each time (default 30 s), capped at one hour. */
  retryBaseMs?: number;
  /** Attempts before a delivery is given up (default 8: about two hours of retries). */
  maxAttempts?: number;
  /** One attempt's timeout (default 5 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

const DEFAULTS = {
  probeSilentAfterMs: 15 * 60_000,
  batch: 20,
  retryBaseMs: 30_000,
  maxAttempts: 8,
  timeoutMs: 5_000,
};

export const SIGNATURE_HEADER = 'x-silentdrop-signature';

/** The signature header's value for a body sent at `at`. */
export function signWebhookBody(secret: string, body: string, at: Date): string {
  const t = Math.floor(at.getTime() / 1000);
  const mac = createHmac('sha256', secret).update(`${t}.${body}`, 'utf8').digest('hex');
  return `t=${t},v1=${mac}`;
}

function summary(kind: AlertKind, p: Record<string, unknown>): string {
  const terms = Array.isArray(p.term_set) ? (p.term_set as string[]).join(' + ') : '';
  const scope = p.scope as Record<string, string> | undefined;
  const where = scope
    ? `${scope.platform ?? '?'} ${scope.conversation_kind ?? '?'}, ${scope.sender_region ?? '?'} → ${scope.recipient_region ?? '?'}`
    : '';
  switch (kind) {
    case 'finding_settled':
      return `silentdrop: "${terms}" settled ${String(p.verdict)} (${where})`;
    case 'finding_ended':
      return `silentdrop: "${terms}" is no longer ${String(p.verdict)} since ${String(p.ended_at)} (${where})`;
    case 'probe_silent':
      return `silentdrop: probe ${String(p.probe_id)} (${String(p.country)}, AS${String(p.asn)}) silent since ${String(p.silent_since)}`;
    case 'dead_letters':
      return `silentdrop: probe ${String(p.probe_id)} (${String(p.country)}) has ${String(p.dead_letters)} dead-lettered events`;
    case 'probe_storage_full':
      return `silentdrop: probe ${String(p.probe_id)} (${String(p.country)}, AS${String(p.asn)}) has reported its data folder full (${String(p.code ?? 'no code')}) since ${String(p.storage_full_since)}; it takes no canaries until it has space`;
  }
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The request body for one alert in a webhook's format. */
export function webhookBody(
  format: WebhookFormat,
  alert: { id: string; kind: AlertKind; createdAt: Date; payload: Record<string, unknown> },
): string {
  const text = summary(alert.kind, alert.payload);
  if (format === 'slack') return JSON.stringify({ text });
  if (format === 'matrix') return JSON.stringify({ text, html: `<p>${escapeHtml(text)}</p>` });
  return JSON.stringify({
    id: alert.id,
    kind: alert.kind,
    created_at: alert.createdAt.toISOString(),
    summary: text,
    ...alert.payload,
  });
}

async function attempt(
  d: DueDelivery,
  now: Date,
  o: typeof DEFAULTS & { fetch: typeof fetch },
): Promise<string | null> {
  const body = webhookBody(d.format, {
    id: d.alertId,
    kind: d.kind,
    createdAt: d.createdAt,
    payload: d.payload,
  });
  try {
    const res = await o.fetch(d.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'silentdrop-alerts',
        'x-silentdrop-alert': d.kind,
        'x-silentdrop-delivery': `${d.alertId}/${d.webhookId}`,
        [SIGNATURE_HEADER]: signWebhookBody(d.secret, body, now),
      },
      body,
      redirect: 'error',
      signal: AbortSignal.timeout(o.timeoutMs),
    });
    await res.body?.cancel().catch(() => {});
    return res.ok ? null : `HTTP ${res.status}`;
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    return cause ? `${(err as Error).message} (${cause})` : (err as Error).message;
  }
}

/** Detects new alerts and attempts the due deliveries; returns what it did. */
export async function runAlerts(
  db: Db,
  now: Date,
  options: AlertOptions = {},
  logger?: Logger,
): Promise<{ detected: number; delivered: number; failed: number }> {
  const o = { ...DEFAULTS, ...options, fetch: options.fetch ?? fetch };
  const detected = await detectAlerts(db, now, o.probeSilentAfterMs);
  if (detected > 0) logger?.info({ alerts: detected }, 'alerts detected');
  // The lease outlives an attempt's timeout, so a slow receiver is never tried twice at once.
  const due = await claimDueDeliveries(db, now, o.batch, o.timeoutMs * 4);
  let delivered = 0;
  let failed = 0;
  await Promise.all(
    due.map(async (d) => {
      const error = await attempt(d, now, o);
      const at = new Date();
      if (error === null) {
        delivered += 1;
        await recordDelivery(db, d, { ok: true, at });
        return;
      }
      failed += 1;
      const giveUp = d.attempts >= o.maxAttempts;
      const backoff = Math.min(o.retryBaseMs * 2 ** (d.attempts - 1), 3_600_000);
      const retryAt = giveUp ? null : new Date(at.getTime() + backoff * (0.75 + Math.random() * 0.5));
      await recordDelivery(db, d, { ok: false, at, error, retryAt });
      logger?.warn(
        { webhook: d.webhookId, alert: d.alertId, attempt: d.attempts, error, giveUp },
        'alert delivery failed',
      );
    }),
  );
  return { detected, delivered, failed };
}
