/**
 * Builds the protocol's events from what an adapter reported. Received events get an
 * id derived from the platform's message id, so a message observed twice (a stream
 * replay after a crash) is one event at the collector.
 *
 * Every string taken from outside (message text, notices, handles, ids) is made
 * representable first (probe/text.ts): NUL and lone surrogates become U+FFFD and long
 * values are cut on a character boundary, so the collector is never sent a value the
 * protocol or Postgres cannot hold. For texts the event says so in `text_changes`.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  type AdapterInfo,
  type CanaryAssignment,
  type FailedEvent,
  type FailureCode,
  LIMITS,
  type ReceivedEvent,
  type RejectedEvent,
  type SentEvent,
  type TextChanges,
} from '../protocol/index.ts';
import { findNonce } from '../protocol/nonce.ts';
import type { ObservedMessage } from './adapters/types.ts';
import { representable, representableString } from './text.ts';

export interface EventContext {
  platform: string;
  account: string;
  adapter: AdapterInfo;
  clockOffsetMs: number;
}

/** A UUID (RFC 9562 version 8, name-based) from a stable name. */
export function stableUuid(name: string): string {
  const h = createHash('sha256').update(name).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** A short string field (≤ 256 code points) made representable. */
const short = (s: string) => representableString(s, 256);

/** `text` (and `text_changes` when it had to be changed). */
function textFields(s: string): { text: string; text_changes?: TextChanges } {
  const r = representable(s, LIMITS.textChars);
  return r.changes.length > 0 ? { text: r.text, text_changes: r.changes } : { text: r.text };
}

function noticeFields(s: string): { notice: string; notice_changes?: TextChanges } {
  const { text, text_changes } = textFields(s);
  return text_changes ? { notice: text, notice_changes: text_changes } : { notice: text };
}

function base(ctx: EventContext, conversation: string, at: Date, eventId: string = randomUUID()) {
  return {
    event_id: eventId,
    platform: ctx.platform,
    account: short(ctx.account),
    conversation: short(conversation),
    at: at.toISOString(),
    clock_offset_ms: ctx.clockOffsetMs,
    adapter: ctx.adapter,
  };
}

export function sentEvent(
  ctx: EventContext,
  a: CanaryAssignment,
  at: Date,
  platformMessageId?: string,
): SentEvent {
  return {
    type: 'sent',
    ...base(ctx, a.conversation, at),
    canary_id: a.canary_id,
    ...textFields(a.text),
    ...(platformMessageId ? { platform_message_id: short(platformMessageId) } : {}),
  };
}

export function rejectedEvent(
  ctx: EventContext,
  a: CanaryAssignment,
  at: Date,
  failure: FailureCode,
  notice?: string,
): RejectedEvent {
  return {
    type: 'rejected',
    ...base(ctx, a.conversation, at),
    canary_id: a.canary_id,
    failure,
    ...(notice !== undefined ? noticeFields(notice) : {}),
  };
}

export function failedEvent(
  ctx: EventContext,
  a: CanaryAssignment,
  at: Date,
  failure: FailureCode,
  detail?: string,
): FailedEvent {
  return {
    type: 'failed',
    ...base(ctx, a.conversation, at),
    canary_id: a.canary_id,
    failure,
    ...(detail ? { detail: representableString(detail, 1024) } : {}),
  };
}

/**
 * A `received` event for a message carrying a canary nonce, or undefined when it
 * carries none. `at` is the platform's delivery time as the client showed it when
 * plausible (so a catch-up after downtime is not mistaken for a delay), else now.
 * The platform's time is on the platform's clock, which is taken to agree with the
 * collector's (both are servers that keep time; the probe's clock may be minutes off or
 * stepped, decision 020): it is turned into probe clock with the offset, like every `at`.
 */
export function receivedEvent(ctx: EventContext, m: ObservedMessage, now: Date): ReceivedEvent | undefined {
  const nonce = findNonce(m.text);
  if (!nonce) return undefined;
  const t = m.at.getTime();
  const collectorNow = now.getTime() + ctx.clockOffsetMs;
  const plausible = Number.isFinite(t) && t <= collectorNow + 5_000 && t >= collectorNow - 7 * 24 * 3600_000;
  const at = plausible ? new Date(Math.min(t, collectorNow) - ctx.clockOffsetMs) : now;
  const identity = m.platformMessageId
    ? `received|${ctx.platform}|${ctx.account}|${m.conversation}|${m.platformMessageId}`
    : `received|${ctx.platform}|${ctx.account}|${m.conversation}|${m.from ?? ''}|${m.at.toISOString()}|${m.text}`;
  return {
    type: 'received',
    ...base(ctx, m.conversation, at, stableUuid(identity)),
    nonce: nonce.nonce,
    ...textFields(m.text),
    ...(m.from ? { from: short(m.from) } : {}),
    ...(m.platformMessageId ? { platform_message_id: short(m.platformMessageId) } : {}),
  };
}
