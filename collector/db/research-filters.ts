/**
 * The outcome filters of the research API as SQL: one FROM clause (outcome ⋈ canary ⋈
 * sender ⋈ recipient ⋈ conversation) and one WHERE builder, shared by paging, export,
 * aggregation, latency and term-set summaries. Every value is a bound parameter.
 */
import { type SQL, sql } from 'drizzle-orm';
import type { AggregationAxis } from '../../protocol/research.ts';
import { sameDeadline, sameDeadlineInSubquery } from './partitions.ts';

export interface OutcomeFilter {
  campaign?: string | undefined;
  platform?: string | undefined;
  /** The term set, as stored (order matters). */
  termSet?: string[] | undefined;
  kind?: 'test' | 'control' | undefined;
  statuses?: string[] | undefined;
  /** Outcomes covered by a finding with one of these verdicts (term set, scope and window). */
  verdicts?: string[] | undefined;
  senderRegions?: string[] | undefined;
  recipientRegions?: string[] | undefined;
  conversationKind?: 'direct' | 'group' | undefined;
  /** The sender's or the recipient's probe. */
  probe?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

/**
 * Aliases: o outcome, c canary, s sender account, r recipient account, cv conversation,
 * sl.sealed (below).
 */
export const OUTCOME_FROM = outcomeFrom(sql`exists (
    select 1 from outcomes po where po.canary_id = c.id and ${sameDeadlineInSubquery('po', 'c')}
      and po.status = 'pending')`);

/**
 * OUTCOME_FROM for reads of a page (a few hundred rows at most). The same sealing, but the
 * look for a pending outcome of the canary is a probe of the outcomes' key per row: as an
 * `exists` the planner hashes every pending outcome of the table first, once per sealed column
 * (four times a page: 32 ms of a 33 ms page at 1M outcomes, 17,857 pending), for the hundred
 * rows a page keeps. Reads of many rows keep OUTCOME_FROM, where one hash is the cheaper plan.
 */
export const OUTCOME_FROM_PAGE = outcomeFrom(sql`coalesce((
    select true from outcomes po where po.canary_id = c.id and ${sameDeadlineInSubquery('po', 'c')}
      and po.status = 'pending' limit 1), false)`);

function outcomeFrom(anyPending: SQL): SQL {
  return sql`canaries c
  join outcomes o on o.canary_id = c.id and ${sameDeadline('o', 'c')}
  join accounts s on s.id = c.sender_account_id
  join accounts r on r.id = o.recipient_account_id
  join conversations cv on cv.id = c.conversation_id
  cross join lateral (select (c.deadline_at > now() or o.status = 'pending' or ${anyPending}) as sealed) sl`;
}

/**
 * A canary is sealed while its deadline has not passed (database clock) or any of its
 * outcomes is still pending. The censor reads the research API: until a canary is
 * final, nothing public may tell it which message is a canary or what it carries. So
 * for a sealed canary the research layer never returns its text, the text as received
 * or its term set (nor its nonce, which is never selected at all), and no filter or
 * grouping by term set or verdict matches it (`terms=`, `verdict=` and `group_by=term_set`
 * would otherwise answer "a canary with these terms was sent at T"). Every research
 * query goes through OUTCOME_FROM and these expressions, so no route can forget it.
 */
export const SEALED = sql`sl.sealed`;
/** A column of the canary or outcome, or null while the canary is sealed. */
export const unsealed = (col: SQL) => sql`(case when sl.sealed then null else ${col} end)`;
/** The term set as the public may see it (null while sealed). */
export const PUBLIC_TERM_SET = unsealed(sql`c.term_set`);

/** Axes of aggregation over OUTCOME_FROM's aliases, whitelisted; values are text (a term set stays an array: the caller keys it). */
export const AXIS_SQL: Record<AggregationAxis, SQL> = {
  minute: sql`to_char(date_trunc('minute', c.send_at at time zone 'UTC'), 'YYYY-MM-DD"T"HH24:MI:00.000"Z"')`,
  hour: sql`to_char(date_trunc('hour', c.send_at at time zone 'UTC'), 'YYYY-MM-DD"T"HH24:00:00.000"Z"')`,
  day: sql`to_char(date_trunc('day', c.send_at at time zone 'UTC'), 'YYYY-MM-DD"T"00:00:00.000"Z"')`,
  // null for sealed canaries: the group of canaries whose term sets are not public yet
  term_set: PUBLIC_TERM_SET,
  sender_region: sql`s.region`,
  recipient_region: sql`r.region`,
  conversation_kind: sql`cv.kind`,
  probe: sql`r.probe_id::text`,
  sender_probe: sql`s.probe_id::text`,
  platform: sql`cv.platform`,
  kind: sql`c.kind`,
  campaign: sql`c.campaign_id::text`,
};

/** A text[] parameter built from JSON, so terms with quotes, braces or commas survive both drivers. */
export function textArray(values: readonly string[]): SQL {
  return sql`array(select jsonb_array_elements_text(${JSON.stringify(values)}::jsonb))`;
}

export function outcomeConditions(f: OutcomeFilter): SQL[] {
  const where: SQL[] = [];
  if (f.campaign) where.push(sql`c.campaign_id = ${f.campaign}::uuid`);
  if (f.platform) where.push(sql`cv.platform = ${f.platform}`);
  if (f.termSet) where.push(sql`c.term_set = ${textArray(f.termSet)} and not ${SEALED}`);
  if (f.kind) where.push(sql`c.kind = ${f.kind}`);
  if (f.statuses?.length) where.push(sql`o.status = any(${textArray(f.statuses)})`);
  if (f.senderRegions?.length) where.push(sql`s.region = any(${textArray(f.senderRegions)})`);
  if (f.recipientRegions?.length) where.push(sql`r.region = any(${textArray(f.recipientRegions)})`);
  if (f.conversationKind) where.push(sql`cv.kind = ${f.conversationKind}`);
  if (f.probe) where.push(sql`(s.probe_id = ${f.probe}::uuid or r.probe_id = ${f.probe}::uuid)`);
  where.push(...sendTimeConditions(f));
  // A deadline is after its send (deadline_seconds >= 1), so a window's start bounds the
  // outcomes' partition key too: months that ended before it are not read (decision 040).
  if (f.from) where.push(sql`o.deadline_at >= ${f.from.toISOString()}::timestamptz`);
  if (f.verdicts?.length) {
    // A finding covers an outcome when term set, campaign (if set), every scope key it
    // names, and its window match. Scope keys absent or null mean "any".
    where.push(sql`exists (
      select 1 from findings f
      where not ${SEALED} and f.verdict = any(${textArray(f.verdicts)})
        and f.term_set = c.term_set
        and (f.campaign_id is null or f.campaign_id = c.campaign_id)
        and coalesce(f.scope->>'platform', cv.platform) = cv.platform
        and coalesce(f.scope->>'sender_region', s.region) = s.region
        and coalesce(f.scope->>'recipient_region', r.region) = r.region
        and coalesce(f.scope->>'conversation_kind', cv.kind) = cv.kind
        and c.send_at >= f.window_start and c.send_at <= f.window_end)`);
  }
  return where;
}

/** The filter's send-time window on canaries c (`from` inclusive, `to` exclusive). */
export function sendTimeConditions(f: OutcomeFilter): SQL[] {
  const where: SQL[] = [];
  if (f.from) where.push(sql`c.send_at >= ${f.from.toISOString()}::timestamptz`);
  if (f.to) where.push(sql`c.send_at < ${f.to.toISOString()}::timestamptz`);
  return where;
}

export function whereClause(conds: SQL[]): SQL {
  return conds.length === 0 ? sql`true` : sql.join(conds, sql` and `);
}

/** Timestamps as RFC 3339 UTC with microseconds (keyset cursors need the full precision). */
export const isoMicros = (col: SQL) =>
  sql`to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
/** Timestamps as RFC 3339 UTC with milliseconds (what the API returns). */
export const isoMillis = (col: SQL) =>
  sql`to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
