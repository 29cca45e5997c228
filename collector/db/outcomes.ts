/**
 * Storage for outcome derivation: per-canary locks, the facts an outcome is derived
 * from, the bulk upsert, and the deadline sweep. The rules live in collector/outcomes.ts.
 */
import { sql } from 'drizzle-orm';
import { type Queryable, rows } from './open.ts';

export interface CanaryRef {
  id: string;
  nonce: string;
  senderAccountId: string;
  text: string;
  deadlineMs: number;
}

export async function canariesByIds(q: Queryable, ids: string[]): Promise<CanaryRef[]> {
  if (ids.length === 0) return [];
  return rows<CanaryRef>(
    q,
    sql`select id, nonce, sender_account_id as "senderAccountId", text,
          (extract(epoch from deadline_at) * 1000)::float8 as "deadlineMs"
        from canaries where id = any(${sql.param(ids)}::uuid[])`,
  );
}

export async function canariesByNonces(q: Queryable, nonces: string[]): Promise<CanaryRef[]> {
  if (nonces.length === 0) return [];
  return rows<CanaryRef>(
    q,
    sql`select id, nonce, sender_account_id as "senderAccountId", text,
          (extract(epoch from deadline_at) * 1000)::float8 as "deadlineMs"
        from canaries where nonce = any(${sql.param(nonces)}::text[])`,
  );
}

/**
 * Serialises outcome derivation per canary across transactions and collectors (a send
 * and its receipt may arrive in two batches at once). Locks are taken in id order.
 */
export async function lockCanaries(q: Queryable, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const sorted = [...new Set(ids)].sort();
  await q.execute(sql`select pg_advisory_xact_lock(hashtextextended(id::text, 0))
    from unnest(${sql.param(sorted)}::uuid[]) with ordinality as t(id, n) order by n`);
}

export interface FactEvent {
  eventId: string;
  canaryId: string;
  type: 'sent' | 'rejected' | 'failed' | 'received';
  accountId: string;
  /** Probe clock, epoch ms. */
  atMs: number;
  clockOffsetMs: number;
  text: string | null;
  failure: string | null;
  notice: string | null;
  /** A receipt reported in the canary's own conversation (a copy posted elsewhere is not). */
  inConversation: boolean;
}

export interface StoredFacts {
  /** The canaries whose events are kept (not pruned by the retention job). */
  canaries: CanaryRef[];
  /**
   * Canaries whose events the retention job deleted (collector/retention.ts): their outcomes
   * are final and must not be derived again from what little arrived since.
   */
  pruned: string[];
  /** Expected recipients: conversation members that are known accounts, minus the sender. */
  members: { canaryId: string; accountId: string }[];
  existing: { canaryId: string; accountId: string; status: string }[];
  events: FactEvent[];
}

export async function loadFacts(q: Queryable, canaryIds: string[]): Promise<StoredFacts> {
  const ids = sql.param(canaryIds);
  const found = await rows<CanaryRef & { pruned: boolean }>(
    q,
    sql`select id, nonce, sender_account_id as "senderAccountId", text,
          (extract(epoch from deadline_at) * 1000)::float8 as "deadlineMs",
          events_pruned_at is not null as pruned
        from canaries where id = any(${ids}::uuid[])`,
  );
  const canaries = found.filter((c) => !c.pruned).map(({ pruned: _, ...c }) => c);
  const pruned = found.filter((c) => c.pruned).map((c) => c.id);
  const members = await rows<{ canaryId: string; accountId: string }>(
    q,
    sql`select c.id as "canaryId", a.id as "accountId"
        from canaries c
        join conversations cv on cv.id = c.conversation_id
        join conversation_members m on m.conversation_id = c.conversation_id
        join accounts a on a.platform = cv.platform and a.handle = m.handle
        where c.id = any(${ids}::uuid[]) and a.id <> c.sender_account_id`,
  );
  const existing = await rows<{ canaryId: string; accountId: string; status: string }>(
    q,
    sql`select canary_id as "canaryId", recipient_account_id as "accountId", status
        from outcomes where canary_id = any(${ids}::uuid[])`,
  );
  const events = await rows<FactEvent>(
    q,
    sql`select e.event_id as "eventId", e.canary_id as "canaryId", e.type, e.account_id as "accountId",
          (extract(epoch from e.at) * 1000)::float8 as "atMs", e.clock_offset_ms as "clockOffsetMs",
          e.raw->>'text' as text, e.raw->>'failure' as failure, e.raw->>'notice' as notice,
          (e.conversation is not distinct from cv.ref) as "inConversation"
        from events e
        join canaries c on c.id = e.canary_id
        join conversations cv on cv.id = c.conversation_id
        where e.canary_id = any(${ids}::uuid[]) and c.events_pruned_at is null`,
  );
  return { canaries, pruned, members, existing, events };
}

export interface OutcomeWrite {
  canaryId: string;
  recipientAccountId: string;
  status: string;
  deadlineMs: number;
  latencyMs: number | null;
  sentEventId: string | null;
  receivedEventId: string | null;
  receivedAtMs: number | null;
  receivedText: string | null;
  failure: string | null;
  notice: string | null;
  dataFormatVersion: number;
}

export async function upsertOutcomes(q: Queryable, list: OutcomeWrite[]): Promise<void> {
  if (list.length === 0) return;
  const col = <K extends keyof OutcomeWrite>(k: K) => sql.param(list.map((o) => o[k]));
  await q.execute(sql`
    insert into outcomes (canary_id, recipient_account_id, status, deadline_at, latency_ms, sent_event_id,
      received_event_id, received_at, received_text, failure, notice, data_format_version, updated_at)
    select o.canary_id, o.recipient_account_id, o.status, to_timestamp(o.deadline_ms / 1000.0), o.latency_ms,
      o.sent_event_id, o.received_event_id,
      case when o.received_ms is null then null else to_timestamp(o.received_ms / 1000.0) end,
      o.received_text, o.failure, o.notice, o.dfv, now()
    from unnest(${col('canaryId')}::uuid[], ${col('recipientAccountId')}::uuid[], ${col('status')}::text[],
      ${col('deadlineMs')}::float8[], ${col('latencyMs')}::int[], ${col('sentEventId')}::uuid[],
      ${col('receivedEventId')}::uuid[], ${col('receivedAtMs')}::float8[], ${col('receivedText')}::text[],
      ${col('failure')}::text[], ${col('notice')}::text[], ${col('dataFormatVersion')}::int[])
      as o(canary_id, recipient_account_id, status, deadline_ms, latency_ms, sent_event_id,
           received_event_id, received_ms, received_text, failure, notice, dfv)
    on conflict (canary_id, recipient_account_id) do update set
      status = excluded.status, deadline_at = excluded.deadline_at, latency_ms = excluded.latency_ms,
      sent_event_id = excluded.sent_event_id, received_event_id = excluded.received_event_id,
      received_at = excluded.received_at, received_text = excluded.received_text,
      failure = excluded.failure, notice = excluded.notice,
      data_format_version = excluded.data_format_version, updated_at = now()`);
}

/** Pending outcomes whose deadline has passed become missing; returns how many. */
export async function markOverdueMissing(q: Queryable, now: Date): Promise<number> {
  const changed = await rows<{ canary_id: string }>(
    q,
    sql`update outcomes set status = 'missing', updated_at = now()
        where status = 'pending' and deadline_at < ${now.toISOString()}::timestamptz
        returning canary_id`,
  );
  return changed.length;
}

export interface OutcomeView {
  canaryId: string;
  recipientAccountId: string;
  status: string;
  latencyMs: number | null;
  receivedText: string | null;
}

export async function outcomesForCanary(q: Queryable, canaryId: string): Promise<OutcomeView[]> {
  return rows<OutcomeView>(
    q,
    sql`select canary_id as "canaryId", recipient_account_id as "recipientAccountId", status,
          latency_ms as "latencyMs", received_text as "receivedText"
        from outcomes where canary_id = ${canaryId}::uuid order by recipient_account_id`,
  );
}
