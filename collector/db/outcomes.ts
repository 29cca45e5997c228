/**
 * Storage for outcome derivation: per-canary locks, the facts an outcome is derived
 * from, the bulk upsert, and the deadline sweep. The rules live in collector/outcomes.ts.
 */
import { sql } from 'drizzle-orm';
import { copiesKey, RECEIVED_BEFORE_CANARY_MARGIN } from './events.ts';
import { type Queryable, rows } from './open.ts';
import { sameDeadline } from './partitions.ts';

export interface CanaryRef {
  id: string;
  nonce: string;
  senderAccountId: string;
  text: string;
  deadlineMs: number;
}

/**
 * The canaries a batch names: by id (sends, refusals, failures) or by nonce (receipts), in one
 * query; with when each was made (what bounds the months its events can be in, insertEvents).
 */
export async function findCanaries(
  q: Queryable,
  ids: string[],
  nonces: string[],
): Promise<(CanaryRef & { createdMs: number })[]> {
  if (ids.length === 0 && nonces.length === 0) return [];
  return rows<CanaryRef & { createdMs: number }>(
    q,
    sql`select c.id, c.nonce, c.sender_account_id as "senderAccountId", c.text,
          (extract(epoch from c.deadline_at) * 1000)::float8 as "deadlineMs",
          (extract(epoch from c.created_at) * 1000)::float8 as "createdMs"
        from canaries c where c.id = any(${sql.param(ids)}::uuid[])
        union
        select c.id, c.nonce, c.sender_account_id as "senderAccountId", c.text,
          (extract(epoch from c.deadline_at) * 1000)::float8 as "deadlineMs",
          (extract(epoch from c.created_at) * 1000)::float8 as "createdMs"
        from canaries c where c.nonce = any(${sql.param(nonces)}::text[])`,
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
  canaries: (CanaryRef & { conversationRef: string | null })[];
  /**
   * Canaries whose events the retention job deleted (collector/retention.ts): their outcomes
   * are final and must not be derived again from what little arrived since.
   */
  pruned: string[];
  /** Expected recipients: conversation members that are known accounts, minus the sender. */
  members: { canaryId: string; accountId: string }[];
  existing: { canaryId: string; accountId: string; status: string }[];
  /** The events of the canaries in `canaries`. */
  events: FactEvent[];
  /**
   * Events kept per canary, account and type (copiesKey), pruned canaries' late events
   * included: what the bound on copies counts (collector/ingest.ts).
   */
  kept: Map<string, number>;
}

/**
 * Everything an outcome of these canaries is derived from, in one query. Call with the
 * canaries locked (lockCanaries), so no other transaction adds to it meanwhile.
 */
export async function loadFacts(q: Queryable, canaryIds: string[]): Promise<StoredFacts> {
  const out: StoredFacts = {
    canaries: [],
    pruned: [],
    members: [],
    existing: [],
    events: [],
    kept: new Map(),
  };
  if (canaryIds.length === 0) return out;
  const ids = sql.param([...new Set(canaryIds)]);
  // One round trip: the canaries, their conversations' members (per conversation, not per
  // canary: a batch's canaries share a few), their outcomes and their events, as one JSON
  // value (decision 023). Numbers keep their exact double values through JSON.
  const [row] = await rows<{
    facts: {
      canaries: (CanaryRef & { conversationId: string; conversationRef: string | null; pruned: boolean })[];
      members: { conversationId: string; accountId: string }[];
      existing: { canaryId: string; accountId: string; status: string }[];
      events: (FactEvent & { conversation: string })[];
    };
  }>(
    q,
    sql`with c as (
          select c.id, c.nonce, c.sender_account_id, c.text, c.deadline_at, c.events_pruned_at,
            c.conversation_id, cv.ref, c.created_at
          from unnest(${ids}::uuid[]) as k(id)
          join canaries c on c.id = k.id
          left join conversations cv on cv.id = c.conversation_id)
        select json_build_object(
          'canaries', (select coalesce(json_agg(json_build_object('id', c.id, 'nonce', c.nonce,
              'senderAccountId', c.sender_account_id, 'text', c.text,
              'deadlineMs', (extract(epoch from c.deadline_at) * 1000)::float8,
              'pruned', c.events_pruned_at is not null, 'conversationId', c.conversation_id,
              'conversationRef', c.ref)), '[]') from c),
          'members', (select coalesce(json_agg(json_build_object('conversationId', m.conversation_id,
              'accountId', a.id)), '[]')
            from conversation_members m
            join conversations cv on cv.id = m.conversation_id
            join accounts a on a.platform = cv.platform and a.handle = m.handle
            where m.conversation_id in (select conversation_id from c)),
          'existing', (select coalesce(json_agg(json_build_object('canaryId', o.canary_id,
              'accountId', o.recipient_account_id, 'status', o.status)), '[]')
            from c join outcomes o on o.canary_id = c.id and ${sameDeadline('o', 'c')}),
          'events', (select coalesce(json_agg(json_build_object('eventId', e.event_id,
              'canaryId', e.canary_id, 'type', e.type, 'accountId', e.account_id,
              'atMs', (extract(epoch from e.at) * 1000)::float8, 'clockOffsetMs', e.clock_offset_ms,
              'text', e.raw->>'text', 'failure', e.raw->>'failure', 'notice', e.raw->>'notice',
              'conversation', e.conversation)), '[]')
            from unnest(${ids}::uuid[]) as k(id) join events e on e.canary_id = k.id
            -- Only the months these canaries' events can be in (insertEvents): events are
            -- partitioned by received_at (decision 039), and this bound prunes older months.
            where e.received_at >= (select min(created_at) from c)
              - ${RECEIVED_BEFORE_CANARY_MARGIN})
        ) as facts`,
  );
  const { canaries: found, members: memberRows, existing, events } = row!.facts;
  const membersOf = new Map<string, string[]>();
  for (const m of memberRows)
    membersOf.set(m.conversationId, [...(membersOf.get(m.conversationId) ?? []), m.accountId]);
  const live = new Map<string, string | null>();
  for (const { pruned, conversationId, ...c } of found) {
    if (pruned) {
      out.pruned.push(c.id);
      continue;
    }
    out.canaries.push(c);
    live.set(c.id, c.conversationRef);
    for (const accountId of membersOf.get(conversationId) ?? [])
      if (accountId !== c.senderAccountId) out.members.push({ canaryId: c.id, accountId });
  }
  out.existing = existing.filter((o) => live.has(o.canaryId));
  for (const { conversation, ...e } of events) {
    const key = copiesKey(e.canaryId, e.accountId, e.type);
    out.kept.set(key, (out.kept.get(key) ?? 0) + 1);
    if (!live.has(e.canaryId)) continue;
    out.events.push({ ...e, inConversation: conversation === live.get(e.canaryId) });
  }
  return out;
}

export interface OutcomeWrite {
  canaryId: string;
  recipientAccountId: string;
  status: string;
  latencyMs: number | null;
  sentEventId: string | null;
  receivedEventId: string | null;
  receivedAtMs: number | null;
  receivedText: string | null;
  failure: string | null;
  notice: string | null;
  dataFormatVersion: number;
}

/** Writes these outcomes; a row already as derived is left alone (its updated_at too). */
export async function upsertOutcomes(q: Queryable, list: OutcomeWrite[]): Promise<void> {
  if (list.length === 0) return;
  // One JSON document for the rows (as insertEvents): no array literals to escape and parse.
  const doc = JSON.stringify(
    list.map((o) => ({
      canary_id: o.canaryId,
      recipient_account_id: o.recipientAccountId,
      status: o.status,
      latency_ms: o.latencyMs,
      sent_event_id: o.sentEventId,
      received_event_id: o.receivedEventId,
      received_ms: o.receivedAtMs,
      received_text: o.receivedText,
      failure: o.failure,
      notice: o.notice,
      dfv: o.dataFormatVersion,
    })),
  );
  await q.execute(sql`
    insert into outcomes (canary_id, recipient_account_id, status, deadline_at, latency_ms, sent_event_id,
      received_event_id, received_at, received_text, failure, notice, data_format_version, updated_at)
    select o.canary_id, o.recipient_account_id, o.status, c.deadline_at, o.latency_ms,
      o.sent_event_id, o.received_event_id,
      case when o.received_ms is null then null else to_timestamp(o.received_ms / 1000.0) end,
      o.received_text, o.failure, o.notice, o.dfv, now()
    from json_to_recordset(${doc}::json)
      as o(canary_id uuid, recipient_account_id uuid, status text, latency_ms int,
           sent_event_id uuid, received_event_id uuid, received_ms float8, received_text text,
           failure text, notice text, dfv int)
    -- deadline_at is the canary's own value, never a copy through JSON: it is the partition key
    -- (decision 040), which reads match exactly (sameDeadline), and never changes.
    join canaries c on c.id = o.canary_id
    on conflict (canary_id, recipient_account_id, deadline_at) do update set
      status = excluded.status, latency_ms = excluded.latency_ms,
      sent_event_id = excluded.sent_event_id, received_event_id = excluded.received_event_id,
      received_at = excluded.received_at, received_text = excluded.received_text,
      failure = excluded.failure, notice = excluded.notice,
      data_format_version = excluded.data_format_version, updated_at = now()
    where (outcomes.status, outcomes.latency_ms, outcomes.sent_event_id,
        outcomes.received_event_id, outcomes.received_at, outcomes.received_text, outcomes.failure,
        outcomes.notice, outcomes.data_format_version)
      is distinct from (excluded.status, excluded.latency_ms, excluded.sent_event_id,
        excluded.received_event_id, excluded.received_at, excluded.received_text, excluded.failure,
        excluded.notice, excluded.data_format_version)`);
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
