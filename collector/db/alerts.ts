/**
 * Alerts and their webhook deliveries. Detection is idempotent: each alert has a dedupe
 * key naming the state it reports (a finding's verdict and onset, a probe's last
 * check-in, a dead-letter count), so running it again, or from several collectors,
 * adds nothing. Deliveries are claimed with FOR UPDATE SKIP LOCKED and a lease.
 */
import { desc, eq, sql } from 'drizzle-orm';
import type { AlertKind, WebhookFormat } from '../../protocol/index.ts';
import { type Queryable, rows } from './open.ts';
import { webhooks } from './schema.ts';

/** Verdicts worth telling someone about when they settle. */
const ADVERSE = sql`('suppressed', 'rejected', 'altered', 'delayed')`;

/**
 * Records alerts for what changed, each with a delivery to every webhook that wants its
 * kind. Returns how many alerts are new.
 */
export async function detectAlerts(q: Queryable, now: Date, probeSilentAfterMs: number): Promise<number> {
  const silentBefore = new Date(now.getTime() - probeSilentAfterMs).toISOString();
  const created = await rows<{ n: number }>(
    q,
    sql`
    with candidates (kind, dedupe_key, payload) as (
      select 'finding_settled', 'finding_settled:' || f.id || ':' || f.verdict || ':' || coalesce(f.since::text, ''),
        jsonb_build_object('finding_id', f.id, 'campaign_id', f.campaign_id, 'term_set', f.term_set,
          'scope', f.scope, 'verdict', f.verdict, 'outcome_kind', f.kind, 'since', f.since,
          'test_trials', f.test_trials, 'control_trials', f.control_trials,
          'test_rate', f.test_rate, 'control_rate', f.control_rate, 'q_value', f.q_value)
      from findings f
      where f.settled and f.verdict in ${ADVERSE}
      union all
      select 'finding_ended', 'finding_ended:' || f.id || ':' || f.ended_at::text,
        jsonb_build_object('finding_id', f.id, 'campaign_id', f.campaign_id, 'term_set', f.term_set,
          'scope', f.scope, 'verdict', f.verdict, 'since', f.since, 'ended_at', f.ended_at)
      from findings f
      where f.ended_at is not null
      union all
      select 'probe_silent', 'probe_silent:' || p.id || ':' || coalesce(p.last_checkin_at::text, 'never'),
        jsonb_build_object('probe_id', p.id, 'country', p.country, 'asn', p.asn, 'label', p.label,
          'last_checkin_at', p.last_checkin_at, 'silent_since', coalesce(p.last_checkin_at, p.registered_at))
      from probes p
      where p.revoked_at is null
        and coalesce(p.last_checkin_at, p.registered_at) < ${silentBefore}::timestamptz
      union all
      select 'dead_letters', 'dead_letters:' || p.id || ':' || p.dead_letters,
        jsonb_build_object('probe_id', p.id, 'country', p.country, 'asn', p.asn, 'label', p.label,
          'dead_letters', p.dead_letters, 'reported_at', p.last_checkin_at)
      from probes p
      where p.revoked_at is null and p.dead_letters > 0
      union all
      select 'probe_storage_full', 'probe_storage_full:' || p.id || ':' || p.storage_full_since::text,
        jsonb_build_object('probe_id', p.id, 'country', p.country, 'asn', p.asn, 'label', p.label,
          'storage_full_since', p.storage_full_since, 'code', p.storage_code)
      from probes p
      where p.revoked_at is null and p.storage_full_since is not null
    ),
    fresh as (
      insert into alerts (kind, dedupe_key, payload)
      select kind, dedupe_key, payload from candidates
      on conflict (dedupe_key) do nothing
      returning id, kind
    ),
    queued as (
      insert into alert_deliveries (alert_id, webhook_id, next_attempt_at)
      select fresh.id, w.id, ${now.toISOString()}::timestamptz
      from fresh join webhooks w on cardinality(w.kinds) = 0 or fresh.kind = any(w.kinds)
      returning 1
    )
    select (select count(*) from fresh)::int as n, (select count(*) from queued)::int as queued`,
  );
  return created[0]?.n ?? 0;
}

export interface DueDelivery {
  alertId: string;
  webhookId: string;
  attempts: number;
  kind: AlertKind;
  payload: Record<string, unknown>;
  createdAt: Date;
  url: string;
  format: WebhookFormat;
  secret: string;
}

/**
 * Claims up to `limit` deliveries that are due: their next attempt moves `leaseMs` ahead
 * and the attempt is counted before it is made, so a collector that dies mid-attempt
 * leaves it to be retried, and two collectors never claim the same one.
 */
export async function claimDueDeliveries(
  q: Queryable,
  now: Date,
  limit: number,
  leaseMs: number,
): Promise<DueDelivery[]> {
  const leaseUntil = new Date(now.getTime() + leaseMs).toISOString();
  const claimed = await rows<{
    alert_id: string;
    webhook_id: string;
    attempts: number;
    kind: AlertKind;
    payload: Record<string, unknown>;
    created_at: string | Date;
    url: string;
    format: WebhookFormat;
    secret: string;
  }>(
    q,
    sql`
    with due as (
      select alert_id, webhook_id from alert_deliveries
      where delivered_at is null and gave_up_at is null and next_attempt_at <= ${now.toISOString()}::timestamptz
      order by next_attempt_at
      limit ${limit}
      for update skip locked
    ),
    claimed as (
      update alert_deliveries d
      set attempts = d.attempts + 1, next_attempt_at = ${leaseUntil}::timestamptz
      from due where d.alert_id = due.alert_id and d.webhook_id = due.webhook_id
      returning d.alert_id, d.webhook_id, d.attempts
    )
    select c.alert_id, c.webhook_id, c.attempts, a.kind, a.payload, a.created_at, w.url, w.format, w.secret
    from claimed c join alerts a on a.id = c.alert_id join webhooks w on w.id = c.webhook_id`,
  );
  return claimed.map((r) => ({
    alertId: r.alert_id,
    webhookId: r.webhook_id,
    attempts: r.attempts,
    kind: r.kind,
    payload: r.payload,
    createdAt: new Date(r.created_at),
    url: r.url,
    format: r.format,
    secret: r.secret,
  }));
}

/** Records an attempt's result: delivered, retried at `retryAt`, or given up (retryAt null). */
export async function recordDelivery(
  q: Queryable,
  d: { alertId: string; webhookId: string },
  result: { ok: true; at: Date } | { ok: false; at: Date; error: string; retryAt: Date | null },
): Promise<void> {
  const at = result.at.toISOString();
  if (result.ok) {
    await q.execute(sql`update alert_deliveries set delivered_at = ${at}::timestamptz, last_error = null
      where alert_id = ${d.alertId} and webhook_id = ${d.webhookId}`);
    return;
  }
  const error = result.error.slice(0, 500);
  if (result.retryAt) {
    await q.execute(sql`update alert_deliveries
      set next_attempt_at = ${result.retryAt.toISOString()}::timestamptz, last_error = ${error}
      where alert_id = ${d.alertId} and webhook_id = ${d.webhookId}`);
  } else {
    await q.execute(sql`update alert_deliveries set gave_up_at = ${at}::timestamptz, last_error = ${error}
      where alert_id = ${d.alertId} and webhook_id = ${d.webhookId}`);
  }
}

export async function createWebhook(
  q: Queryable,
  input: { url: string; format: WebhookFormat; kinds: AlertKind[]; secret: string; label: string | null },
): Promise<{ id: string; createdAt: Date }> {
  const [row] = await q
    .insert(webhooks)
    .values(input)
    .returning({ id: webhooks.id, createdAt: webhooks.createdAt });
  if (!row) throw new Error('webhook insert returned nothing');
  return row;
}

export async function deleteWebhook(q: Queryable, id: string): Promise<boolean> {
  const deleted = await q.delete(webhooks).where(eq(webhooks.id, id)).returning({ id: webhooks.id });
  return deleted.length === 1;
}

export interface WebhookSummary {
  id: string;
  url: string;
  format: WebhookFormat;
  kinds: AlertKind[];
  label: string | null;
  createdAt: Date;
  delivered: number;
  pending: number;
  failed: number;
  lastError: string | null;
}

export async function listWebhooks(q: Queryable): Promise<WebhookSummary[]> {
  const list = await q.select().from(webhooks).orderBy(desc(webhooks.createdAt));
  const stats = await rows<{
    webhook_id: string;
    delivered: number;
    pending: number;
    failed: number;
    last_error: string | null;
  }>(
    q,
    sql`select webhook_id,
      count(*) filter (where delivered_at is not null)::int as delivered,
      count(*) filter (where delivered_at is null and gave_up_at is null)::int as pending,
      count(*) filter (where gave_up_at is not null)::int as failed,
      (array_agg(last_error order by next_attempt_at desc) filter (where last_error is not null))[1] as last_error
    from alert_deliveries group by webhook_id`,
  );
  const byId = new Map(stats.map((s) => [s.webhook_id, s]));
  return list.map((w) => {
    const s = byId.get(w.id);
    return {
      id: w.id,
      url: w.url,
      format: w.format as WebhookFormat,
      kinds: w.kinds as AlertKind[],
      label: w.label,
      createdAt: w.createdAt,
      delivered: s?.delivered ?? 0,
      pending: s?.pending ?? 0,
      failed: s?.failed ?? 0,
      lastError: s?.last_error ?? null,
    };
  });
}
