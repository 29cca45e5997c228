/**
 * POST /probe/v1/events, after the signature is verified: validates each event on its
 * own (protocol schema, then what the database can hold: collector/validation.ts), stores
 * the new ones in one transaction with one bulk insert (split in halves under savepoints
 * when Postgres still refuses a value, so one bad event is refused and its neighbours are
 * stored), and re-derives the outcomes of the canaries they touch. Idempotent by
 * (probe, event_id): one probe cannot claim another's event ids.
 *
 * The database work is set-based (decision 023): the batch's canaries are looked up once,
 * locked, and everything their outcomes are derived from is read in one query before the
 * insert; the outcomes are derived from that plus the events just stored (not read back)
 * and written in one statement. About ten statements a batch, whatever its size.
 *
 * A receipt whose nonce is no canary of ours (a look-alike word in someone's message) is
 * no evidence; it is kept only as a bounded trace: its text cut to
 * UNKNOWN_NONCE_BOUND.textBytes, and at most UNKNOWN_NONCE_BOUND.perProbe of them per
 * probe per UNKNOWN_NONCE_BOUND.windowMs. Past the bound it is answered `ignored`
 * (acknowledged, not stored) so the probe moves on.
 *
 * Reports of one real canary are bounded the same way: an honest probe reports one send
 * per canary and one receipt per recipient (a resend keeps its event id, so it is a
 * duplicate). Anyone in the group can post copies of a canary's text, and a hostile probe
 * can report a send again under new ids; each would be kept and make every later
 * derivation of that canary's outcomes read more. So at most COPIES_BOUND.perCanaryAccountType
 * events of one type from one account are kept per canary; the rest are answered
 * `ignored`. The first reports are the ones that decide an outcome anyway.
 */
import type { EventResult, ProbeEvent } from '../protocol/index.ts';
import { findAccounts } from './db/accounts.ts';
import {
  copiesKey,
  countUnknownNonceReceipts,
  type EventRow,
  insertEventsBisecting,
  lockUnknownNonceBound,
  RECEIVED_BEFORE_CANARY_MARGIN_MS,
} from './db/events.ts';
import type { Db } from './db/open.ts';
import { type FactEvent, findCanaries, loadFacts, lockCanaries } from './db/outcomes.ts';
import { claimRequestId } from './db/probes.ts';
import { storeOutcomes } from './outcomes.ts';
import { validateEvent } from './validation.ts';

export interface SignedRequest {
  probeId: string;
  requestId: string;
  signature: string;
}

/** The bound on receipts of nonces that are no canary of ours (see the top of this file). */
export const UNKNOWN_NONCE_BOUND = {
  textBytes: 256,
  perProbe: 100,
  windowMs: 60 * 60 * 1000,
} as const;

/** The bound on events kept per canary, account and type (see the top of this file). */
export const COPIES_BOUND = { perCanaryAccountType: 8 } as const;

/**
 * Look-alike receipts in one batch: kept (stored, bounded) and dropped by the bound; and
 * reports of a real canary dropped past COPIES_BOUND.
 */
export interface UnknownNonceTally {
  kept: number;
  dropped: number;
  copiesDropped: number;
}

export type IngestOutcome =
  | { kind: 'ok'; results: EventResult[]; unknownNonce: UnknownNonceTally }
  | { kind: 'replay' }
  | { kind: 'forbidden'; accounts: string[] };

class Abort extends Error {
  constructor(public readonly outcome: IngestOutcome) {
    super(outcome.kind);
  }
}

interface Candidate {
  index: number;
  event: ProbeEvent;
}

export async function ingestEvents(
  db: Db,
  req: SignedRequest,
  rawEvents: unknown[],
  now: Date,
): Promise<IngestOutcome> {
  const results: EventResult[] = rawEvents.map((_, index) => ({ index, status: 'refused' }));
  const unknownNonce: UnknownNonceTally = { kept: 0, dropped: 0, copiesDropped: 0 };
  const candidates: Candidate[] = [];
  const seenIds = new Set<string>();
  rawEvents.forEach((raw, index) => {
    const checked = validateEvent(raw, `/events/${index}`, now);
    const result = results[index]!;
    if (!checked.ok) {
      result.reason = checked.reason;
      const id = (raw as { event_id?: unknown } | null)?.event_id;
      if (typeof id === 'string') result.event_id = id;
      return;
    }
    result.event_id = checked.event.event_id;
    if (seenIds.has(checked.event.event_id)) {
      result.status = 'duplicate';
      return;
    }
    seenIds.add(checked.event.event_id);
    candidates.push({ index, event: checked.event });
  });

  try {
    await db.transaction(async (tx) => {
      if (!(await claimRequestId(tx, req.requestId, req.probeId))) throw new Abort({ kind: 'replay' });

      const accounts = await findAccounts(
        tx,
        candidates.map((c) => ({ platform: c.event.platform, handle: c.event.account })),
      );
      const accountKey = (platform: string, handle: string) => `${platform}\u0000${handle}`;
      const accountByKey = new Map(accounts.map((a) => [accountKey(a.platform, a.handle), a]));
      // Accounts another probe holds. A batch about nothing but such accounts is not this
      // probe's to report at all (403); in a batch that also reports its own accounts, each
      // such event is refused alone and its neighbours are stored. Never named: their
      // handles belong to other probes' operators.
      const foreign = accounts.filter((a) => a.probeId !== req.probeId);
      const foreignKeys = new Set(foreign.map((a) => accountKey(a.platform, a.handle)));
      const isForeign = (e: ProbeEvent) => foreignKeys.has(accountKey(e.platform, e.account));
      if (foreign.length > 0 && candidates.every((c) => isForeign(c.event))) {
        throw new Abort({ kind: 'forbidden', accounts: foreign.map((a) => `${a.platform}/${a.handle}`) });
      }

      const found = await findCanaries(
        tx,
        candidates.flatMap((c) => (c.event.type === 'received' ? [] : [c.event.canary_id])),
        candidates.flatMap((c) => (c.event.type === 'received' ? [c.event.nonce] : [])),
      );
      const byId = new Map(found.map((c) => [c.id, c]));
      const byNonce = new Map(found.map((c) => [c.nonce, c]));

      // Room left under the bound on look-alike receipts (counted only when a batch has one).
      let unknownRoom = 0;
      if (candidates.some((c) => c.event.type === 'received' && !byNonce.has(c.event.nonce))) {
        await lockUnknownNonceBound(tx, req.probeId);
        const since = new Date(now.getTime() - UNKNOWN_NONCE_BOUND.windowMs);
        unknownRoom =
          UNKNOWN_NONCE_BOUND.perProbe - (await countUnknownNonceReceipts(tx, req.probeId, since));
      }

      // The canaries are locked (as refreshOutcomes and the retention job lock them, in the
      // same order), then everything their outcomes are derived from is read once: the events
      // already kept per canary, account and type count against COPIES_BOUND (two batches
      // cannot both take the last place), and the outcomes below are derived from these facts
      // plus the events this batch stores, without reading those back (decision 023).
      const foundIds = found.map((c) => c.id);
      await lockCanaries(tx, foundIds);
      const facts = await loadFacts(tx, foundIds);
      const conversationOf = new Map(facts.canaries.map((c) => [c.id, c.conversationRef]));
      const kept = new Map(facts.kept);

      const rows: EventRow[] = [];
      const rowIndex: number[] = [];
      const rowEvent: ProbeEvent[] = [];
      for (const { index, event } of candidates) {
        const result = results[index]!;
        if (isForeign(event)) {
          result.reason = `/events/${index}/account: held by another probe, not by the one that signed this batch`;
          continue;
        }
        const account = accountByKey.get(accountKey(event.platform, event.account));
        if (!account) {
          result.reason = `/events/${index}/account: unknown account; report it in a check-in first`;
          continue;
        }
        let canaryId: string | null;
        let raw: ProbeEvent = event;
        if (event.type === 'received') {
          canaryId = byNonce.get(event.nonce)?.id ?? null;
          if (canaryId === null) {
            if (unknownRoom <= 0) {
              result.status = 'ignored';
              result.reason =
                `/events/${index}/nonce: no canary of ours; over the bound of ` +
                `${UNKNOWN_NONCE_BOUND.perProbe} such receipts an hour per probe, not kept`;
              unknownNonce.dropped++;
              continue;
            }
            unknownRoom--;
            raw = boundedLookAlike(event);
          }
        } else {
          const canary = byId.get(event.canary_id);
          if (!canary) {
            result.reason = `/events/${index}/canary_id: unknown canary`;
            continue;
          }
          if (canary.senderAccountId !== account.id) {
            result.reason = `/events/${index}/account: not the sender of this canary`;
            continue;
          }
          canaryId = canary.id;
        }
        if (canaryId !== null) {
          const key = copiesKey(canaryId, account.id, event.type);
          const n = kept.get(key) ?? 0;
          if (n >= COPIES_BOUND.perCanaryAccountType) {
            result.status = 'ignored';
            result.reason =
              `/events/${index}: this account has reported ${n} ${event.type} events for this ` +
              `canary already; the first ones decide its outcome, more are not kept`;
            unknownNonce.copiesDropped++;
            continue;
          }
          kept.set(key, n + 1);
        }
        rows.push({
          eventId: event.event_id,
          probeId: req.probeId,
          requestId: req.requestId,
          signature: req.signature,
          type: event.type,
          platform: event.platform,
          accountId: account.id,
          conversation: event.conversation,
          canaryId,
          nonce: event.type === 'received' ? event.nonce : null,
          // As the instant validation checked, in one form Postgres reads (a UTC offset of
          // +16:00 passes RFC 3339 and JavaScript, not Postgres); `raw` keeps what was sent.
          at: new Date(event.at).toISOString(),
          clockOffsetMs: event.clock_offset_ms,
          raw: JSON.stringify(raw),
        });
        rowIndex.push(index);
        rowEvent.push(event);
      }

      // The months a stored copy of these events can be in: from the oldest canary's making
      // on, or every month when look-alike receipts are among them (insertEvents).
      let since: Date | null = null;
      if (rows.every((r) => r.canaryId !== null)) {
        let oldest = Number.POSITIVE_INFINITY;
        for (const r of rows) oldest = Math.min(oldest, byId.get(r.canaryId!)!.createdMs);
        if (Number.isFinite(oldest)) since = new Date(oldest - RECEIVED_BEFORE_CANARY_MARGIN_MS);
      }
      const inserted = await insertEventsBisecting(tx, rows, since);
      const touched: string[] = [];
      const storedFacts: FactEvent[] = [];
      rows.forEach((row, i) => {
        const index = rowIndex[i]!;
        const result = results[index]!;
        const outcome = inserted[i]!;
        if (outcome.status === 'refused') {
          result.reason = `/events/${index}: ${outcome.reason}`;
          return;
        }
        result.status = outcome.status;
        if (outcome.status === 'stored' && row.canaryId) {
          touched.push(row.canaryId);
          // The event as loadFacts would read it back (raw->>'text' etc. of the stored JSON).
          const e = rowEvent[i]!;
          storedFacts.push({
            eventId: row.eventId,
            canaryId: row.canaryId,
            type: row.type,
            accountId: row.accountId,
            atMs: Date.parse(row.at),
            clockOffsetMs: row.clockOffsetMs,
            text: stringField(e, 'text'),
            failure: stringField(e, 'failure'),
            notice: stringField(e, 'notice'),
            inConversation: row.conversation === conversationOf.get(row.canaryId),
          });
        }
        if (outcome.status === 'stored' && row.type === 'received' && !row.canaryId) unknownNonce.kept++;
      });
      // Facts of live canaries only (loadFacts leaves pruned canaries' events out too).
      facts.events.push(...storedFacts.filter((e) => conversationOf.has(e.canaryId)));
      await storeOutcomes(tx, facts, touched, now);
    });
  } catch (err) {
    if (err instanceof Abort) return err.outcome;
    throw err;
  }
  return { kind: 'ok', results, unknownNonce };
}

/** A string field of an event as `raw->>'field'` reads it (the schema allows strings only). */
function stringField(event: ProbeEvent, field: 'text' | 'failure' | 'notice'): string | null {
  const v = (event as Partial<Record<typeof field, unknown>>)[field];
  return typeof v === 'string' ? v : null;
}

/** A look-alike receipt as kept: its text cut to UNKNOWN_NONCE_BOUND.textBytes of UTF-8. */
function boundedLookAlike(event: ProbeEvent & { type: 'received' }): ProbeEvent {
  const text = truncateUtf8(event.text, UNKNOWN_NONCE_BOUND.textBytes);
  if (text === event.text) return event;
  return { ...event, text, text_truncated: true } as ProbeEvent;
}

/** The longest prefix of `s` (whole code points) of at most `maxBytes` bytes of UTF-8. */
export function truncateUtf8(s: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (bytes > maxBytes) break;
    end += ch.length;
  }
  return s.slice(0, end);
}
