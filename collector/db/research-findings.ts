/**
 * Findings (written by collector/analysis) for the research API, in keyset order
 * (window start, id), with their minimal term sets: the smallest sub-sets of a finding's
 * term set that carry a finding of the same verdict in the same scope (isolation results).
 */
import { type SQL, sql } from 'drizzle-orm';
import { type Queryable, rows } from './open.ts';
import { isoMicros, isoMillis, textArray, whereClause } from './research-filters.ts';

export interface FindingFilter {
  campaign?: string | undefined;
  platform?: string | undefined;
  termSet?: string[] | undefined;
  verdicts?: string[] | undefined;
  senderRegions?: string[] | undefined;
  recipientRegions?: string[] | undefined;
  conversationKind?: string | undefined;
  /** Window ends at or after. */
  from?: Date | undefined;
  /** Window starts before. */
  to?: Date | undefined;
}

export interface FindingKey {
  windowStart: string;
  id: string;
}

export interface FindingRow {
  id: string;
  campaign_id: string | null;
  term_set: string[];
  scope: Record<string, unknown> | null;
  verdict: string;
  window_start: string;
  window_end: string;
  /** Change-point onset (monitor mode), else the start of the evidence window. */
  onset_at: string;
  /** Change-point end, else the end of the evidence window. */
  end_at: string;
  test_trials: number;
  control_trials: number;
  test_rate: number | null;
  control_rate: number | null;
  p_value: number | null;
  q_value: number | null;
  ci_low: number | null;
  ci_high: number | null;
  created_at: string;
  minimal_term_sets: string[][] | null;
  key_window_start: string;
  settled: boolean;
  method: 'paired' | 'screen';
  independent_probes: {
    test: { probes: number; asns: number; independent: number };
    control: { probes: number; asns: number; independent: number };
  } | null;
}

/** A scope key matches when the finding names that value, or leaves it open (any). */
function scopeIn(key: string, values: readonly string[] | undefined): SQL | null {
  if (!values?.length) return null;
  return sql`(f.scope->>${key} is null or f.scope->>${key} = any(${textArray(values)}))`;
}

function findingConditions(ff: FindingFilter): SQL[] {
  const conds: (SQL | null)[] = [
    ff.campaign ? sql`f.campaign_id = ${ff.campaign}::uuid` : null,
    ff.termSet ? sql`f.term_set = ${textArray(ff.termSet)}` : null,
    ff.verdicts?.length ? sql`f.verdict = any(${textArray(ff.verdicts)})` : null,
    scopeIn('platform', ff.platform ? [ff.platform] : undefined),
    scopeIn('sender_region', ff.senderRegions),
    scopeIn('recipient_region', ff.recipientRegions),
    scopeIn('conversation_kind', ff.conversationKind ? [ff.conversationKind] : undefined),
    ff.from ? sql`f.window_end >= ${ff.from.toISOString()}::timestamptz` : null,
    ff.to ? sql`f.window_start < ${ff.to.toISOString()}::timestamptz` : null,
  ];
  return conds.filter((c): c is SQL => c !== null);
}

export async function readFindings(
  q: Queryable,
  ff: FindingFilter,
  page: { after?: FindingKey | undefined; limit: number },
): Promise<FindingRow[]> {
  const conds = findingConditions(ff);
  if (page.after) {
    conds.push(
      sql`(f.window_start, f.id) > (${page.after.windowStart}::timestamptz, ${page.after.id}::uuid)`,
    );
  }
  return rows<FindingRow>(
    q,
    sql`select f.id, f.campaign_id, f.term_set, f.scope, f.verdict,
          ${isoMillis(sql`f.window_start`)} as window_start, ${isoMillis(sql`f.window_end`)} as window_end,
          ${isoMillis(sql`coalesce(f.since, f.window_start)`)} as onset_at,
          ${isoMillis(sql`coalesce(f.ended_at, f.window_end)`)} as end_at,
          f.test_trials, f.control_trials, f.test_rate, f.control_rate, f.p_value, f.q_value, f.ci_low, f.ci_high,
          f.settled, case when f.detail->>'source' = 'screen' then 'screen' else 'paired' end as method,
          f.independent_probes,
          ${isoMillis(sql`f.created_at`)} as created_at, ${isoMicros(sql`f.window_start`)} as key_window_start,
          (select coalesce(jsonb_agg(to_jsonb(g.term_set) order by g.term_set), '[]'::jsonb)
             from findings g
            where g.verdict = f.verdict and g.verdict not in ('none', 'inconclusive')
              and g.scope = f.scope and g.term_set <@ f.term_set
              and not exists (select 1 from findings h
                               where h.verdict = g.verdict and h.scope = g.scope and h.term_set <@ g.term_set
                                 and cardinality(h.term_set) < cardinality(g.term_set))) as minimal_term_sets
        from findings f
        where ${whereClause(conds)}
        order by f.window_start, f.id
        limit ${page.limit}`,
  );
}

export interface LatestFinding {
  term_set: string[];
  id: string;
  verdict: string;
  window_start: string;
  /** Change-point onset, else the start of the evidence window. */
  onset_at: string;
}

/** The most recent finding per term set among those matching the filter. */
export async function latestFindingPerTermSet(q: Queryable, ff: FindingFilter): Promise<LatestFinding[]> {
  return rows<LatestFinding>(
    q,
    sql`select distinct on (f.term_set) f.term_set, f.id, f.verdict, ${isoMillis(sql`f.window_start`)} as window_start,
          ${isoMillis(sql`coalesce(f.since, f.window_start)`)} as onset_at
        from findings f where ${whereClause(findingConditions(ff))}
        order by f.term_set, f.window_end desc, f.created_at desc, f.id`,
  );
}

/** Findings per verdict (metrics). */
export async function countFindingsByVerdict(q: Queryable): Promise<{ verdict: string; n: number }[]> {
  return rows(q, sql`select verdict, count(*)::int as n from findings group by verdict`);
}
