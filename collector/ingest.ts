/**
 * POST /probe/v1/events, after the signature is verified: validates each event on its
 * own, stores the new ones in one transaction with one bulk insert, and re-derives the
 * outcomes of the canaries they touch. Idempotent by event_id.
 */
import type { EventResult, ProbeEvent } from '../protocol/index.ts';
import { findAccounts } from './db/accounts.ts';
import { type EventRow, insertEvents } from './db/events.ts';
import type { Db } from './db/open.ts';
import { canariesByIds, canariesByNonces } from './db/outcomes.ts';
import { claimRequestId } from './db/probes.ts';
import { refreshOutcomes } from './outcomes.ts';
import { validateEvent } from './validation.ts';

export interface SignedRequest {
  probeId: string;
  requestId: string;
  signature: string;
}

export type IngestOutcome =
  | { kind: 'ok'; results: EventResult[] }
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
  const candidates: Candidate[] = [];
  const seenIds = new Set<string>();
  rawEvents.forEach((raw, index) => {
    const checked = validateEvent(raw, `/events/${index}`);
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
      const foreign = accounts.filter((a) => a.probeId !== req.probeId);
      if (foreign.length > 0) {
        throw new Abort({ kind: 'forbidden', accounts: foreign.map((a) => `${a.platform}/${a.handle}`) });
      }

      const byId = new Map(
        (
          await canariesByIds(
            tx,
            candidates.flatMap((c) => (c.event.type === 'received' ? [] : [c.event.canary_id])),
          )
        ).map((c) => [c.id, c]),
      );
      const byNonce = new Map(
        (
          await canariesByNonces(
            tx,
            candidates.flatMap((c) => (c.event.type === 'received' ? [c.event.nonce] : [])),
          )
        ).map((c) => [c.nonce, c]),
      );

      const rows: EventRow[] = [];
      const rowIndex: number[] = [];
      for (const { index, event } of candidates) {
        const result = results[index]!;
        const account = accountByKey.get(accountKey(event.platform, event.account));
        if (!account) {
          result.reason = `/events/${index}/account: unknown account; report it in a check-in first`;
          continue;
        }
        let canaryId: string | null;
        if (event.type === 'received') {
          canaryId = byNonce.get(event.nonce)?.id ?? null;
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
          at: event.at,
          clockOffsetMs: event.clock_offset_ms,
          raw: JSON.stringify(event),
        });
        rowIndex.push(index);
      }

      const stored = await insertEvents(tx, rows);
      const touched: string[] = [];
      rows.forEach((row, i) => {
        const result = results[rowIndex[i]!]!;
        if (stored.has(row.eventId)) {
          result.status = 'stored';
          if (row.canaryId) touched.push(row.canaryId);
        } else {
          result.status = 'duplicate';
        }
      });
      await refreshOutcomes(tx, touched, now);
    });
  } catch (err) {
    if (err instanceof Abort) return err.outcome;
    throw err;
  }
  return { kind: 'ok', results };
}
