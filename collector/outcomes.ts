/**
 * How sends and receipts become outcomes, one row per canary and expected recipient.
 *
 * An outcome is derived from everything known about its canary, so the result does not
 * depend on the order events arrive in (a receipt may come before its send):
 * - a `sent` event exists → per recipient, the earliest receipt (collector clock) decides:
 *   `altered` if its text differs from the sent text after NFC normalisation, else
 *   `delayed` if it came after the deadline, else `delivered`; no receipt → `pending`
 *   until the deadline, `missing` after it. A late receipt turns `missing` into `delayed`.
 * - no `sent`, but `rejected` → `rejected` for every recipient (the sender saw a notice);
 *   no `sent`, but `failed` → `failed` (the adapter could not run: not evidence).
 * - nothing from the sender yet → no outcome rows; receipts wait in the events table.
 * Latency = (recv.at + recv.clock_offset_ms) − (sent.at + sent.clock_offset_ms); null when
 * it does not fit latency_ms (int4, ±24.8 days: one of the clocks is nonsense).
 * Recipients: conversation members that are known accounts, minus the sender. A receipt is
 * evidence only from a recipient: one reported by the sender's own account, or by an
 * account not in the canary's conversation (a look-alike, or a probe forging receipts for
 * a conversation it is not in), is kept as an event but never makes or changes an outcome.
 * Once `missing`, an outcome never goes back to `pending` (collectors' clocks differ a
 * little; the finaliser's decision stands until a receipt arrives).
 * Once the retention job has pruned a canary's events (collector/retention.ts), its
 * outcomes never change again: nothing is derived for it any more.
 */
import { DATA_FORMAT_VERSION, type OutcomeStatus } from '../protocol/index.ts';
import type { Queryable } from './db/open.ts';
import {
  type CanaryRef,
  type FactEvent,
  loadFacts,
  lockCanaries,
  markOverdueMissing,
  type OutcomeWrite,
  type StoredFacts,
  upsertOutcomes,
} from './db/outcomes.ts';
import { flagLateEvents } from './db/retention.ts';
import { INT4 } from './validation.ts';

export interface CanaryFacts {
  canary: CanaryRef;
  recipients: string[];
  events: FactEvent[];
  /** Stored status per recipient account, where an outcome exists already. */
  previous?: ReadonlyMap<string, string>;
}

const corrected = (e: FactEvent) => e.atMs + e.clockOffsetMs;
const byCorrectedTime = (a: FactEvent, b: FactEvent) => corrected(a) - corrected(b);
const nfc = (s: string | null) => (s ?? '').normalize('NFC');

/** Pure: the outcome rows for one canary at collector time `nowMs`. */
export function deriveOutcomes(facts: CanaryFacts, nowMs: number): OutcomeWrite[] {
  const { canary } = facts;
  const ofType = (t: FactEvent['type']) => facts.events.filter((e) => e.type === t).sort(byCorrectedTime);
  const sent = ofType('sent')[0];
  const rejected = ofType('rejected')[0];
  const failed = ofType('failed')[0];
  if (!sent && !rejected && !failed) return [];

  const recipients = new Set(facts.recipients);
  recipients.delete(canary.senderAccountId);
  // Evidence only from a recipient, in the canary's own conversation: a copy of the text
  // posted elsewhere (a look-alike) reaches the same account but is not this canary.
  const receipts = ofType('received').filter((r) => recipients.has(r.accountId) && r.inConversation);

  const out: OutcomeWrite[] = [];
  for (const recipient of [...recipients].sort()) {
    const receipt = receipts.find((r) => r.accountId === recipient);
    const row: OutcomeWrite = {
      canaryId: canary.id,
      recipientAccountId: recipient,
      status: 'pending',
      latencyMs: null,
      sentEventId: sent?.eventId ?? null,
      receivedEventId: receipt?.eventId ?? null,
      receivedAtMs: receipt ? corrected(receipt) : null,
      receivedText: receipt?.text ?? null,
      failure: null,
      notice: null,
      dataFormatVersion: DATA_FORMAT_VERSION,
    };
    if (sent) {
      row.status = receiptStatus(sent, receipt, canary.deadlineMs, nowMs);
      if (row.status === 'pending' && facts.previous?.get(recipient) === 'missing') row.status = 'missing';
      if (receipt) row.latencyMs = int4OrNull(Math.round(corrected(receipt) - corrected(sent)));
    } else if (rejected) {
      row.status = 'rejected';
      row.failure = rejected.failure;
      row.notice = rejected.notice;
    } else if (failed) {
      row.status = 'failed';
      row.failure = failed.failure;
    }
    out.push(row);
  }
  return out;
}

const int4OrNull = (n: number) => (n >= INT4.min && n <= INT4.max ? n : null);

function receiptStatus(
  sent: FactEvent,
  receipt: FactEvent | undefined,
  deadlineMs: number,
  nowMs: number,
): OutcomeStatus {
  if (!receipt) return nowMs > deadlineMs ? 'missing' : 'pending';
  if (nfc(receipt.text) !== nfc(sent.text)) return 'altered';
  return corrected(receipt) > deadlineMs ? 'delayed' : 'delivered';
}

/**
 * Re-derives and stores the outcomes of these canaries. Call inside the transaction
 * that stored their new events; takes per-canary locks first.
 *
 * A canary whose events the retention job pruned (collector/retention.ts) is never
 * re-derived: its outcomes were final when its events went, and deriving from an event
 * that arrived since (a receipt without its send) would wipe them. Such late events stay
 * stored (a resend is still a duplicate) and the canary is flagged for the job to delete
 * them. The job takes the same per-canary lock, so pruning and deriving never interleave.
 */
export async function refreshOutcomes(tx: Queryable, canaryIds: string[], now: Date): Promise<void> {
  const ids = [...new Set(canaryIds)];
  if (ids.length === 0) return;
  await lockCanaries(tx, ids);
  await storeOutcomes(tx, await loadFacts(tx, ids), ids, now);
}

/**
 * The second half of refreshOutcomes, for a caller that already holds the canaries' locks
 * and has their facts (collector/ingest.ts loads them before its insert, for the bound on
 * copies, and adds the events it stored): derives the outcomes of `canaryIds` from `facts`
 * and writes them in one statement. Flags pruned ones as refreshOutcomes does.
 */
export async function storeOutcomes(
  tx: Queryable,
  facts: StoredFacts,
  canaryIds: readonly string[],
  now: Date,
): Promise<void> {
  const wanted = new Set(canaryIds);
  const pruned = facts.pruned.filter((id) => wanted.has(id));
  if (pruned.length > 0) await flagLateEvents(tx, pruned, now);
  const group = <T extends { canaryId: string }>(list: T[]) => {
    const by = new Map<string, T[]>();
    for (const x of list) {
      if (!wanted.has(x.canaryId)) continue;
      const l = by.get(x.canaryId);
      if (l) l.push(x);
      else by.set(x.canaryId, [x]);
    }
    return by;
  };
  const members = group(facts.members);
  const existing = group(facts.existing);
  const events = group(facts.events);
  const writes: OutcomeWrite[] = [];
  for (const canary of facts.canaries) {
    if (!wanted.has(canary.id)) continue;
    const stored = existing.get(canary.id) ?? [];
    const recipients = [
      ...(members.get(canary.id) ?? []).map((m) => m.accountId),
      ...stored.map((m) => m.accountId),
    ];
    const previous = new Map(stored.map((m) => [m.accountId, m.status]));
    const canaryEvents = events.get(canary.id) ?? [];
    writes.push(...deriveOutcomes({ canary, recipients, events: canaryEvents, previous }, now.getTime()));
  }
  await upsertOutcomes(tx, writes);
}

/** The deadline sweep: pending outcomes past their deadline become `missing`. */
export async function finaliseOutcomes(q: Queryable, now: Date): Promise<number> {
  return markOverdueMissing(q, now);
}
