/** Read-only views for tests and operators: row counts and single outcomes. */
import { sql } from 'drizzle-orm';
import { type Queryable, rows } from './open.ts';
import { sameDeadline, sameDeadlineInSubquery } from './partitions.ts';

export const TABLES = [
  'enrollment_tokens',
  'probes',
  'accounts',
  'conversations',
  'conversation_members',
  'term_lists',
  'terms',
  'campaigns',
  'rounds',
  'canaries',
  'events',
  'outcomes',
  'findings',
  'request_ids',
] as const;

/** Row count of every collector table. */
export async function countRows(q: Queryable): Promise<Record<(typeof TABLES)[number], number>> {
  const parts = TABLES.map((t) => `select '${t}' as t, count(*)::int as n from ${t}`).join(' union all ');
  const found = await rows<{ t: (typeof TABLES)[number]; n: number }>(q, sql.raw(parts));
  return Object.fromEntries(found.map((r) => [r.t, r.n])) as Record<(typeof TABLES)[number], number>;
}

export async function eventIdsOfRequest(q: Queryable, requestId: string): Promise<string[]> {
  const found = await rows<{ id: string }>(
    q,
    sql`select event_id as id from events where request_id = ${requestId}::uuid order by event_id`,
  );
  return found.map((r) => r.id);
}

/** The probes that stored an event with this id (event ids are unique per probe only). */
export async function probesOfEventId(q: Queryable, eventId: string): Promise<string[]> {
  const found = await rows<{ id: string }>(
    q,
    sql`select probe_id as id from events where event_id = ${eventId}::uuid order by probe_id`,
  );
  return found.map((r) => r.id);
}

/** The stored JSON of one probe's event, or undefined. */
export async function rawEvent(
  q: Queryable,
  probeId: string,
  eventId: string,
): Promise<Record<string, unknown> | undefined> {
  const [row] = await rows<{ raw: Record<string, unknown> | string }>(
    q,
    sql`select raw from events where probe_id = ${probeId}::uuid and event_id = ${eventId}::uuid`,
  );
  if (!row) return undefined;
  return typeof row.raw === 'string' ? (JSON.parse(row.raw) as Record<string, unknown>) : row.raw;
}

export interface CanarySummary {
  id: string;
  kind: 'test' | 'control';
  pairId: string;
  termSet: string[];
  carriedTerms: string[];
  text: string;
  nonce: string;
  senderAccountId: string;
  roundId: string | null;
}

export async function canariesOfCampaign(q: Queryable, campaignId: string): Promise<CanarySummary[]> {
  return rows<CanarySummary>(
    q,
    sql`select id, kind, pair_id as "pairId", term_set as "termSet", carried_terms as "carriedTerms", text, nonce,
          sender_account_id as "senderAccountId", round_id as "roundId"
        from canaries where campaign_id = ${campaignId}::uuid order by send_at, id`,
  );
}

export async function termSetsOfList(q: Queryable, termListId: string): Promise<string[][]> {
  const found = await rows<{ s: string[] }>(
    q,
    sql`select term_set as s from terms where term_list_id = ${termListId}::uuid order by line`,
  );
  return found.map((r) => r.s);
}

/** How many times each event id is stored (any probe): the fuzz suite's exactly-once check. */
export async function eventIdCounts(q: Queryable, eventIds: string[]): Promise<Map<string, number>> {
  if (eventIds.length === 0) return new Map();
  const found = await rows<{ id: string; n: number }>(
    q,
    sql`select event_id::text as id, count(*)::int as n from events
        where event_id::text = any(${sql.param(eventIds)}::text[]) group by event_id`,
  );
  return new Map(found.map((r) => [r.id, r.n]));
}

/**
 * The fault suite's accounting (faults/): what the database holds of the probes' events and
 * of one campaign's canaries, counted so that a duplicate would show (events by key, send
 * reports per canary, receipts per canary and recipient), never assumed away by the keys.
 */
export interface StoredAccounting {
  /** `probe_id event_id` → rows with that key. */
  eventRows: Map<string, number>;
  canaries: {
    id: string;
    handedOut: boolean;
    deadlineAt: string;
    /** sent / rejected / failed events with this canary id. */
    reports: number;
    /** failed events, by failure code. */
    failures: string[];
    /** Receipts of this canary's nonce, per receiving account id. */
    receipts: Record<string, number>;
    outcomes: number;
  }[];
  outcomes: Record<string, number>;
  findings: Record<string, number>;
}

export async function storedAccounting(q: Queryable, campaignId: string): Promise<StoredAccounting> {
  const keys = await rows<{ k: string; n: number }>(
    q,
    sql`select probe_id::text || ' ' || event_id::text as k, count(*)::int as n from events group by 1`,
  );
  const canaries = await rows<{
    id: string;
    handed: boolean;
    deadline: string;
    reports: number;
    failures: string[] | null;
    receipts: Record<string, number> | string | null;
    outcomes: number;
  }>(
    q,
    sql`select c.id::text as id, c.handed_out_at is not null as handed, c.deadline_at::text as deadline,
          (select count(*)::int from events e
            where e.canary_id = c.id and e.type in ('sent', 'rejected', 'failed')) as reports,
          (select array_agg(e.raw->>'failure') from events e
            where e.canary_id = c.id and e.type = 'failed') as failures,
          (select jsonb_object_agg(r.account_id, r.n) from
            (select e.account_id::text as account_id, count(*)::int as n from events e
              where e.nonce = c.nonce and e.type = 'received' group by e.account_id) r) as receipts,
          (select count(*)::int from outcomes o where o.canary_id = c.id and ${sameDeadlineInSubquery('o', 'c')})
            as outcomes
        from canaries c where c.campaign_id = ${campaignId}::uuid`,
  );
  const outcomes = await rows<{ v: string; n: number }>(
    q,
    sql`select o.status as v, count(*)::int as n from outcomes o join canaries c on c.id = o.canary_id and ${sameDeadline('o', 'c')}
        where c.campaign_id = ${campaignId}::uuid group by o.status`,
  );
  return {
    eventRows: new Map(keys.map((r) => [r.k, r.n])),
    canaries: canaries.map((c) => ({
      id: c.id,
      handedOut: c.handed,
      deadlineAt: c.deadline,
      reports: c.reports,
      failures: c.failures ?? [],
      receipts: (typeof c.receipts === 'string' ? JSON.parse(c.receipts) : c.receipts) ?? {},
      outcomes: c.outcomes,
    })),
    outcomes: Object.fromEntries(outcomes.map((r) => [r.v, r.n])),
    findings: await findingVerdicts(q, campaignId),
  };
}

/** A campaign's findings by verdict (polled by the fault suite while a fault is on). */
export async function findingVerdicts(q: Queryable, campaignId: string): Promise<Record<string, number>> {
  const found = await rows<{ v: string; n: number }>(
    q,
    sql`select verdict as v, count(*)::int as n from findings where campaign_id = ${campaignId}::uuid
        group by verdict`,
  );
  return Object.fromEntries(found.map((r) => [r.v, r.n]));
}
