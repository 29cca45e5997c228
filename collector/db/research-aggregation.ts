/**
 * Grouped counts of outcomes for the research API: by one or two axes, a latency
 * histogram of tests against controls, and per-term-set summaries. Rates and intervals
 * are computed by the caller from these counts.
 */
import { sql } from 'drizzle-orm';
import { type AggregationAxis, LATENCY_BIN_EDGES_MS } from '../../protocol/research.ts';
import { type Queryable, rows } from './open.ts';
import {
  AXIS_SQL,
  isoMillis,
  OUTCOME_FROM,
  type OutcomeFilter,
  outcomeConditions,
  SEALED,
  whereClause,
} from './research-filters.ts';
import { countByAxesFromRollups, LATENCY_RELATIVE_ERROR, latencyFromRollups, rollupPlan } from './rollups.ts';
import {
  countByTermSetFromRollups,
  countTermSetTimelineFromRollups,
  termSetRollupsHold,
  termSetTimelineHolds,
} from './term-set-rollups.ts';

export interface StatusCounts {
  delivered: number;
  delayed: number;
  missing: number;
  altered: number;
  rejected: number;
  failed: number;
  pending: number;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
}

export interface GroupedCounts extends StatusCounts {
  /** One value per axis: text, or the term set as an array. */
  k: (string | string[] | null)[];
}

const COUNTS = sql`count(*) filter (where o.status = 'delivered')::int as delivered,
  count(*) filter (where o.status = 'delayed')::int as delayed,
  count(*) filter (where o.status = 'missing')::int as missing,
  count(*) filter (where o.status = 'altered')::int as altered,
  count(*) filter (where o.status = 'rejected')::int as rejected,
  count(*) filter (where o.status = 'failed')::int as failed,
  count(*) filter (where o.status = 'pending')::int as pending,
  (percentile_cont(0.5) within group (order by o.latency_ms)
     filter (where o.status in ('delivered', 'delayed')))::float8 as latency_p50_ms,
  (percentile_cont(0.95) within group (order by o.latency_ms)
     filter (where o.status in ('delivered', 'delayed')))::float8 as latency_p95_ms`;

/**
 * Counts by one or two axes: from the rollups (collector/db/rollups.ts, and for one term set's
 * timeline collector/db/term-set-rollups.ts) when they can answer the question exactly, from
 * the outcomes otherwise (decisions 022, 035).
 */
export async function countByAxes(
  q: Queryable,
  filter: OutcomeFilter,
  axes: readonly AggregationAxis[],
): Promise<GroupedCounts[]> {
  // one term set by hour or day and arm: the terms view's timeline (decision 035)
  if (termSetTimelineHolds(filter, axes)) return countTermSetTimelineFromRollups(q, filter, axes);
  const plan = rollupPlan(filter, axes);
  return plan ? countByAxesFromRollups(q, filter, axes, plan) : countByAxesRaw(q, filter, axes);
}

/** Counts by one or two axes read from the outcomes themselves (exact latency quantiles). */
export async function countByAxesRaw(
  q: Queryable,
  filter: OutcomeFilter,
  axes: readonly AggregationAxis[],
): Promise<GroupedCounts[]> {
  const keys = axes.map((a, i) => sql`${AXIS_SQL[a]} as ${sql.identifier(`k${i}`)}`);
  const positions = sql.raw(axes.map((_, i) => String(i + 1)).join(', '));
  const found = await rows<Record<string, unknown>>(
    q,
    sql`select ${sql.join(keys, sql`, `)}, ${COUNTS}
        from ${OUTCOME_FROM}
        where ${whereClause(outcomeConditions(filter))}
        group by ${positions} order by ${positions}`,
  );
  return found.map((row) => ({
    ...(row as unknown as StatusCounts),
    k: axes.map((_, i) => (row[`k${i}`] ?? null) as string | string[] | null),
  }));
}

export interface LatencyCounts {
  kind: 'test' | 'control';
  /** Arrived outcomes per bin (bin i: below edges[i]; the last one: at or above the last edge). */
  counts: number[];
  n: number;
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
}

/** /api/v1/latency's histograms and quantiles, and the largest relative error of those quantiles. */
export interface LatencySeries {
  series: LatencyCounts[];
  /** 0: quantiles over every outcome (exact); LATENCY_RELATIVE_ERROR: read from the rollups' histogram. */
  quantileError: number;
}

/**
 * Latency per arm in the bins of LATENCY_BIN_EDGES_MS: from the rollups when they hold the
 * filter exactly (bins exact, quantiles within LATENCY_RELATIVE_ERROR; decision 032), from the
 * outcomes otherwise (exact quantiles).
 */
export async function latencyHistogram(q: Queryable, filter: OutcomeFilter): Promise<LatencySeries> {
  const plan = rollupPlan(filter, ['kind']);
  return plan
    ? { series: await latencyFromRollups(q, filter, plan), quantileError: LATENCY_RELATIVE_ERROR }
    : { series: await latencyHistogramRaw(q, filter, LATENCY_BIN_EDGES_MS), quantileError: 0 };
}

/** Latency per arm from the outcomes themselves: bins at `edges` and exact percentile_cont quantiles. */
export async function latencyHistogramRaw(
  q: Queryable,
  filter: OutcomeFilter,
  edges: readonly number[],
): Promise<LatencyCounts[]> {
  const arrived = [
    ...outcomeConditions(filter),
    sql`o.status in ('delivered', 'delayed')`,
    sql`o.latency_ms is not null`,
  ];
  const edgeArray = sql`array(select jsonb_array_elements_text(${JSON.stringify(edges)}::jsonb)::float8)`;
  const bins = await rows<{ kind: 'test' | 'control'; bin: number; n: number }>(
    q,
    sql`select c.kind, width_bucket(greatest(o.latency_ms, 0)::float8, ${edgeArray}) as bin, count(*)::int as n
        from ${OUTCOME_FROM} where ${whereClause(arrived)} group by 1, 2`,
  );
  const quantiles = await rows<
    { kind: 'test' | 'control'; n: number } & Record<'p50' | 'p90' | 'p95' | 'p99', number>
  >(
    q,
    sql`select c.kind, count(*)::int as n,
          (percentile_cont(0.5) within group (order by o.latency_ms))::float8 as p50,
          (percentile_cont(0.9) within group (order by o.latency_ms))::float8 as p90,
          (percentile_cont(0.95) within group (order by o.latency_ms))::float8 as p95,
          (percentile_cont(0.99) within group (order by o.latency_ms))::float8 as p99
        from ${OUTCOME_FROM} where ${whereClause(arrived)} group by 1`,
  );
  return (['test', 'control'] as const).map((kind) => {
    const counts = new Array<number>(edges.length + 1).fill(0);
    for (const b of bins) if (b.kind === kind) counts[b.bin] = (counts[b.bin] ?? 0) + b.n;
    const qn = quantiles.find((x) => x.kind === kind);
    return {
      kind,
      counts,
      n: qn?.n ?? 0,
      p50: qn?.p50 ?? null,
      p90: qn?.p90 ?? null,
      p95: qn?.p95 ?? null,
      p99: qn?.p99 ?? null,
    };
  });
}

export interface TermSetCounts extends StatusCounts {
  term_set: string[];
  kind: 'test' | 'control';
  first_sent_at: string;
  last_sent_at: string;
}

/** countByTermSet's rows, and the largest relative error of their latency quantiles. */
export interface TermSetList {
  counts: TermSetCounts[];
  /** 0: quantiles over every outcome (exact); LATENCY_RELATIVE_ERROR: from the rollups' histogram. */
  quantileError: number;
}

/**
 * Per term set and arm, final canaries only; ordered by first send, at most `limit` term sets:
 * from the term-set rollups when they hold the filter (decision 033), else from the outcomes.
 */
export async function countByTermSet(
  q: Queryable,
  filter: OutcomeFilter,
  limit: number,
): Promise<TermSetList> {
  return termSetRollupsHold(filter)
    ? { counts: await countByTermSetFromRollups(q, filter, limit), quantileError: LATENCY_RELATIVE_ERROR }
    : { counts: await countByTermSetRaw(q, filter, limit), quantileError: 0 };
}

/** Per term set and arm, final canaries only (sealed ones name no term set); ordered by first send. */
export async function countByTermSetRaw(
  q: Queryable,
  filter: OutcomeFilter,
  limit: number,
): Promise<TermSetCounts[]> {
  const conds = whereClause([...outcomeConditions(filter), sql`not ${SEALED}`]);
  return rows<TermSetCounts>(
    q,
    sql`with sets as (
          select c.term_set from ${OUTCOME_FROM} where ${conds}
          group by c.term_set order by min(c.send_at), c.term_set limit ${limit})
        select c.term_set, c.kind, ${COUNTS},
          ${isoMillis(sql`min(c.send_at)`)} as first_sent_at, ${isoMillis(sql`max(c.send_at)`)} as last_sent_at
        from ${OUTCOME_FROM} join sets on sets.term_set = c.term_set
        where ${conds}
        group by c.term_set, c.kind`,
  );
}
