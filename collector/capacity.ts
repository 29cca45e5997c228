/**
 * Send budgets (docs/decisions/014): how many canaries an account can send in a window, from
 * what its probe reported at check-in (protocol SendCapacity: pacing, how long sends take, sliding-window limits and
 * what they still allow, the probe's daily budget left, what is queued), and how many of those
 * sends are already spoken for by canaries planned and not yet sent. Rounds and follow-ups plan
 * no more than what is left (collector/rounds.ts, collector/followups.ts). Pure.
 */
import type { SendCapacity } from '../protocol/index.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * An account that never reported its capacity (an older probe) is planned with the probe's own
 * defaults (probe/config.ts DEFAULTS: a 2–8 s pause, 6 a minute, 120 an hour, 1,000 a day),
 * the most a probe sends unless its operator raised them.
 */
export const DEFAULT_CAPACITY: SendCapacity = {
  pacing_min_ms: 2000,
  pacing_max_ms: 8000,
  per_minute: 6,
  per_hour: 120,
  per_day: 1000,
  remaining_minute: 6,
  remaining_hour: 120,
  remaining_day: 1000,
  queued: 0,
};

/** One sender account as the planner sees it. */
export interface SenderLoad {
  /** The last report, or undefined (then DEFAULT_CAPACITY, as if reported now). */
  capacity?: SendCapacity | undefined;
  reportedAt?: Date | undefined;
  /** Canaries it sent (or the platform refused) since that report: they used the limits up. */
  sentSinceReport: number;
  /** Canaries planned for it, not reported sent, rejected or failed, that compete for the window. */
  outstanding: number;
  /**
   * Of its canaries whose deadline fell in the `spanMs` before the window: how many it sent (or
   * the platform refused) and how many its probe gave up as `deadline_missed`.
   */
  recent?: { sent: number; missed: number; spanMs: number } | undefined;
}

/** The share of an account's recent canaries missed that makes the planner use its shown rate. */
export const MISSED_SHARE = 0.1;

/**
 * What pacing allows in a span, at the rate the account really sends once it misses deadlines:
 * its probe reports the pause it keeps and how long its sends take, but a probe that shares its
 * machine (the local network; a small VPS) or waits on a slow platform sends slower, and every
 * canary planned past that rate comes back `deadline_missed`, wasted. Once at least one in ten
 * of its recent canaries was missed (a stray miss, a pause of the probe's machine, is no rate):
 * the rate shown (its sends of the recent span scaled to this one, plus a pair) or half of what
 * pacing allows, whichever is more. With the shown rate alone, an account planned little sends
 * little, shows a low rate and is planned less, until it stops.
 */
function paced(load: SenderLoad, pacing: number, span: number): number {
  const r = load.recent;
  if (!r || r.spanMs <= 0 || !Number.isFinite(pacing)) return pacing;
  if (r.missed === 0 || r.missed < MISSED_SHARE * (r.sent + r.missed)) return pacing;
  const shown = Math.ceil((r.sent * span) / r.spanMs) + 2;
  return Math.min(pacing, Math.max(shown, Math.ceil(pacing / 2)));
}

/**
 * How many sends the account can make in [from, until] (epoch ms): the least of what pacing
 * allows (the longest pause between two sends, plus how long its sends take lately when the
 * probe reports it), each sliding window (what it allowed at the
 * report, less what was sent since, plus a full window for every whole window length the
 * interval spans; a window that has passed entirely since the report is full again), and the
 * probe's daily budget left.
 */
export function sendsWithin(load: SenderLoad, from: number, until: number): number {
  const c = load.capacity ?? DEFAULT_CAPACITY;
  const reported = load.reportedAt?.getTime() ?? from;
  const span = Math.max(0, until - from);
  const used = load.capacity ? load.sentSinceReport : 0;
  // One send now, then one per longest pause plus what a send itself takes lately (send_ms).
  const perSend = c.pacing_max_ms + (c.send_ms ?? 0);
  const pacing = paced(load, perSend > 0 ? Math.floor(span / perSend) + 1 : Number.POSITIVE_INFINITY, span);
  const window = (ms: number, max: number, remaining: number) => {
    const now = from - reported >= ms ? max : Math.max(0, remaining - used);
    return now + max * Math.floor(span / ms);
  };
  const budget =
    c.budget_remaining === undefined ? Number.POSITIVE_INFINITY : Math.max(0, c.budget_remaining - used);
  return Math.max(
    0,
    Math.min(
      pacing,
      window(MINUTE, c.per_minute, c.remaining_minute),
      window(HOUR, c.per_hour, c.remaining_hour),
      window(DAY, c.per_day, c.remaining_day),
      budget,
    ),
  );
}

/**
 * Canaries the account can still take in [from, until]: its sends in the window less those
 * already planned for it there and not sent. What its probe reported queued counts too when it
 * is more (canaries of another collector's rounds, or handed out and not yet reported).
 */
export function budgetLeft(load: SenderLoad, from: number, until: number): number {
  const queued = load.capacity ? Math.max(0, load.capacity.queued - load.sentSinceReport) : 0;
  return Math.max(0, sendsWithin(load, from, until) - Math.max(load.outstanding, queued));
}

/** A sender's probe as the planner sees its check-ins (db/capacity.ts `senderCheckins`). */
export interface ProbeCheckins {
  /** The probe's id: the probe whose check-in asked for a plan hears of it at once. */
  probeId?: string | undefined;
  lastCheckinAt?: Date | undefined;
  /** Between its last two check-ins, ms (undefined before the second). */
  gapMs?: number | undefined;
}

/**
 * When the sender's probe hears of a canary the planner makes visible at `from` (epoch ms; its
 * transaction commits then, `from` ≥ `now`): its first check-in at or after `from`, counted in
 * the gap it keeps from its last check-in. That gap is the interval the collector asks for
 * (`next_checkin_at`) plus how long the check-in itself took and the probe's own delays: under
 * load (500 term sets, decision 024) 7–11 s against a 5-s interval, and canaries aimed at the
 * interval reached the probe past their deadline. It counts up to `MAX_GAP_INTERVALS` intervals
 * (a gap that long is an outage, not a rhythm). A check-in that comes before the commit does not
 * see the canary; the one after does. A probe that never checked in, or is past its time (its
 * check-in may be waiting for that very commit), is taken to come any moment: `from`.
 */
export function nextCheckin(
  p: ProbeCheckins | undefined,
  now: number,
  from: number,
  intervalMs: number,
): number {
  if (!p?.lastCheckinAt) return from;
  const gap = Math.min(p.gapMs ?? intervalMs, MAX_GAP_INTERVALS * intervalMs);
  const last = p.lastCheckinAt.getTime();
  if (gap <= 0 || now > last + gap) return from;
  const k = Math.max(1, Math.ceil((from - last) / gap));
  return Math.max(from, Math.min(last + k * gap, from + Math.max(gap, intervalMs)));
}

/** The longest gap between a probe's check-ins the planner expects, in check-in intervals. */
export const MAX_GAP_INTERVALS = 3;

/**
 * A round's canaries moved, per sender account, so that none is due before its sender's probe
 * can hear of it (`heardAt`, epoch ms). A round is due at its cron time, and planning it ahead
 * (a check-in interval, the rounds' horizon) lets the probe hear of it at a check-in first; a
 * round planned late (a slow sweep on a large campaign, decision 024's 500-set run: rounds
 * stored 2–8 s after their time, two of three canaries `deadline_missed` with a 3-s deadline)
 * had canaries due, or past their deadline, before any probe could hear of them. A sender's
 * canaries keep their order and spacing (its pacing within the round) and each pair its test
 * and control together (they share the sender); only their send time and deadline move, by
 * what the sender's first canary would be early. Canaries already due after `heardAt` are
 * unchanged. Pure.
 */
export function dueWhenHeard<C extends { senderAccountId: string; sendAt: Date; deadlineAt: Date }>(
  canaries: readonly C[],
  heardAt: (accountId: string) => number,
): C[] {
  const first = new Map<string, number>();
  for (const c of canaries) {
    const t = c.sendAt.getTime();
    if (t < (first.get(c.senderAccountId) ?? Number.POSITIVE_INFINITY)) first.set(c.senderAccountId, t);
  }
  const shift = new Map([...first].map(([id, t]) => [id, Math.max(0, heardAt(id) - t)] as const));
  return canaries.map((c) => {
    const by = shift.get(c.senderAccountId) ?? 0;
    if (by === 0) return c;
    return {
      ...c,
      sendAt: new Date(c.sendAt.getTime() + by),
      deadlineAt: new Date(c.deadlineAt.getTime() + by),
    };
  });
}
