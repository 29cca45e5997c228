/** Events as received: one bulk insert per batch, idempotent on event_id. */
import { sql } from 'drizzle-orm';
import { type Queryable, rows } from './open.ts';

export interface EventRow {
  eventId: string;
  probeId: string;
  requestId: string;
  signature: string;
  type: 'sent' | 'rejected' | 'failed' | 'received';
  platform: string;
  accountId: string;
  conversation: string;
  canaryId: string | null;
  nonce: string | null;
  /** Probe clock, RFC 3339. */
  at: string;
  clockOffsetMs: number;
  /** The event's JSON text. */
  raw: string;
}

/** Inserts the events whose id is new; returns the ids actually stored. */
export async function insertEvents(q: Queryable, events: EventRow[]): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  const col = <K extends keyof EventRow>(k: K) => sql.param(events.map((e) => e[k]));
  const stored = await rows<{ event_id: string }>(
    q,
    sql`insert into events (event_id, probe_id, request_id, signature, type, platform, account_id,
          conversation, canary_id, nonce, at, clock_offset_ms, raw)
        select e.event_id, e.probe_id, e.request_id, e.signature, e.type, e.platform, e.account_id,
          e.conversation, e.canary_id, e.nonce, e.at, e.clock_offset_ms, e.raw::jsonb
        from unnest(${col('eventId')}::uuid[], ${col('probeId')}::uuid[], ${col('requestId')}::uuid[],
          ${col('signature')}::text[], ${col('type')}::text[], ${col('platform')}::text[],
          ${col('accountId')}::uuid[], ${col('conversation')}::text[], ${col('canaryId')}::uuid[],
          ${col('nonce')}::text[], ${col('at')}::timestamptz[], ${col('clockOffsetMs')}::float8[],
          ${col('raw')}::text[])
          as e(event_id, probe_id, request_id, signature, type, platform, account_id, conversation,
               canary_id, nonce, at, clock_offset_ms, raw)
        on conflict (event_id) do nothing
        returning event_id`,
  );
  return new Set(stored.map((r) => r.event_id));
}

export async function countEvents(q: Queryable): Promise<number> {
  const [row] = await rows<{ n: number }>(q, sql`select count(*)::int as n from events`);
  return row?.n ?? 0;
}
