/**
 * Rollups of outcomes (decision 022): counts per time bucket (minute, hour, day of the send
 * time, UTC), campaign, arm (test/control) and scope (platform, conversation kind, sender and
 * recipient region), with a latency histogram of arrived outcomes and their counts per bin of
 * /api/v1/latency (decision 032), so that /aggregation and /latency read thousands of rows
 * instead of millions.
 *
 * Guarantees:
 * - Exact counts. Every outcome write sets outcomes.updated_at = now() (the writing
 *   transaction's start). The job (rollUpOutcomes) recomputes, from the outcomes, every minute
 *   cell (campaign × minute) holding an outcome written since the watermark, then the hour and
 *   day cells above them from the finer rows, and moves the watermark, all in one transaction.
 *   The new watermark is the earliest start of any transaction still open, so no write below
 *   it can commit later.
 * - Fresh answers. A read (countByAxesFromRollups) is one statement, one snapshot: cells with
 *   an outcome written at or after the watermark are read from the outcomes, all others from
 *   the rollup. A job that never ran, or lags, makes reads slower, never wrong.
 * - Latency quantiles are read from the histogram (log buckets, ratio 2^(1/4)): within
 *   LATENCY_RELATIVE_ERROR (9.05 %) of the exact percentile_cont for latencies from 1 ms
 *   to 2^30 ms (12.4 days; above, the quantile reads 2^30 ms); below 1 ms (clock skew can make them negative) they count as 0.
 *
 * - Totals over campaigns (outcome_rollup_totals): the job sums each recomputed bucket's rows
 *   over campaigns at every grain, so a read with no campaign filter and no campaign axis reads
 *   one row per bucket and scope however many campaigns there are (the histogram sums are what
 *   a read costs: about 100 ns per row and bucket).
 *
 * Not in the rollups (the outcomes answer): the term_set, probe and sender_probe axes and the
 * terms, verdict and probe filters (sealing and findings depend on the moment of reading), a
 * status filter naming only one of delivered/delayed, and from/to off the grain.
 * Dimensions are taken when a cell is recomputed: a conversation whose kind changes later
 * keeps the old kind in cells not written since (the outcomes answer with the new one).
 */
import { type SQL, sql } from 'drizzle-orm';
import { type AggregationAxis, LATENCY_BIN_EDGES_MS } from '../../protocol/research.ts';
import { type Db, type Queryable, rows } from './open.ts';
import { sameDeadline } from './partitions.ts';
import type { GroupedCounts, LatencyCounts } from './research-aggregation.ts';
import {
  AXIS_SQL,
  isoMicros,
  type OutcomeFilter,
  outcomeConditions,
  whereClause,
} from './research-filters.ts';

export type Grain = 'minute' | 'hour' | 'day';
const GRAINS: readonly Grain[] = ['minute', 'hour', 'day'];
const GRAIN_MS: Record<Grain, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** Edges of the latency histogram, ms: 2^(i/4) for i = 0..120 (1 ms to 2^30 ms ≈ 12.4 days). */
export const LATENCY_BUCKET_EDGES_MS: readonly number[] = Array.from({ length: 121 }, (_, i) => 2 ** (i / 4));
/** Bucket 0: below 1 ms; bucket i: [edge i−1, edge i); the last: at or above 2^30 ms. */
export const LATENCY_BUCKETS = LATENCY_BUCKET_EDGES_MS.length + 1;
/** Largest relative error of a quantile read from the histogram (latencies 1 ms to 2^30 ms). */
export const LATENCY_RELATIVE_ERROR = 2 ** (1 / 8) - 1;

const EDGES_SQL = sql.raw(`'{${LATENCY_BUCKET_EDGES_MS.join(',')}}'::float8[]`);
/** The bucket of an arrived outcome's latency, null for any other outcome. */
export const LATENCY_BUCKET = sql`case when o.status in ('delivered', 'delayed') and o.latency_ms is not null
  then width_bucket(o.latency_ms::float8, ${EDGES_SQL}) end`;

/** Bins of /api/v1/latency: bin 0 below the first edge (negative latencies too), the last at or above the last edge. */
export const LATENCY_BINS = LATENCY_BIN_EDGES_MS.length + 1;
const BIN_EDGES_SQL = sql.raw(`'{${LATENCY_BIN_EDGES_MS.join(',')}}'::float8[]`);
/** The /latency bin of an arrived outcome's latency (as that route computes it), null for any other outcome. */
const LATENCY_BIN = sql`case when o.status in ('delivered', 'delayed') and o.latency_ms is not null
  then width_bucket(greatest(o.latency_ms, 0)::float8, ${BIN_EDGES_SQL}) end`;

/** The value a quantile takes in bucket `b`: its geometric middle (0 below 1 ms, the edge above the top). */
function bucketValue(b: number): number {
  if (b <= 0) return 0;
  if (b >= LATENCY_BUCKETS - 1) return LATENCY_BUCKET_EDGES_MS[LATENCY_BUCKETS - 2]!;
  return 2 ** ((2 * b - 1) / 8);
}

/** percentile_cont(q) over a histogram: interpolated between the values of two ranks. */
export function quantileFromHistogram(counts: ArrayLike<number>, q: number): number | null {
  let n = 0;
  for (let b = 0; b < counts.length; b++) n += counts[b] ?? 0;
  if (n === 0) return null;
  const rank = q * (n - 1);
  const at = (k: number) => {
    let seen = 0;
    for (let b = 0; b < counts.length; b++) {
      seen += counts[b] ?? 0;
      if (k < seen) return bucketValue(b);
    }
    return bucketValue(counts.length - 1);
  };
  const lo = Math.floor(rank);
  const v = at(lo);
  return rank === lo ? v : v + (rank - lo) * (at(lo + 1) - v);
}

/**
 * Reads a histogram sent as text (`array_to_string(…, ',')`: non-negative integers separated
 * by commas) into `into`, without a string or a number per element: a read over every
 * campaign at the hour grain brings ~1,400 of them, and split(',').map(Number) cost more
 * than the query's execution. Returns `into`.
 */
export function parseHistogram(text: string, into: Float64Array): Float64Array {
  into.fill(0);
  let i = 0;
  let v = 0;
  for (let c = 0; c < text.length; c++) {
    const ch = text.charCodeAt(c);
    if (ch === 44 /* , */) {
      if (i < into.length) into[i] = v;
      i++;
      v = 0;
    } else v = v * 10 + (ch - 48);
  }
  if (text.length > 0 && i < into.length) into[i] = v;
  return into;
}

/** The bucket of a send time at a grain, as timestamptz (UTC days). */
const bucketOf = (grain: Grain, t: SQL) =>
  sql`(date_trunc(${sql.raw(`'${grain}'`)}, ${t} at time zone 'UTC') at time zone 'UTC')`;
const STEP: Record<Grain, SQL> = {
  minute: sql`interval '1 minute'`,
  hour: sql`interval '1 hour'`,
  day: sql`interval '24 hours'`,
};
export const STATUSES = [
  'delivered',
  'delayed',
  'missing',
  'altered',
  'rejected',
  'failed',
  'pending',
] as const;

/** `count(*) filter (where o.status = …) as <status>` for every status, in a select over outcomes `o`. */
export const STATUS_COUNTS = sql.raw(
  STATUSES.map((s) => `count(*) filter (where o.status = '${s}') as ${s}`).join(', '),
);

/** `sum(<prefix><status>)::int as <status>` for every status. */
export const statusSums = (prefix = ''): SQL =>
  sql.raw(STATUSES.map((s) => `sum(${prefix}${s})::int as ${s}`).join(', '));

const ids = (cols: readonly string[]) => sql.raw(cols.join(', '));
/** array[sum(col[1]), …, sum(col[L])]::int[]: the element-wise sum of histograms (L buckets). */
export const sumHistograms = (col: string, length = LATENCY_BUCKETS) =>
  sql.raw(
    `array[${Array.from({ length }, (_, i) => `coalesce(sum(${col}[${i + 1}]), 0)`).join(', ')}]::int[]`,
  );
const sumBins = (col: string) => sumHistograms(col, LATENCY_BINS);
/** array[sum(arrived) filter (where <key> = 0), …]::int[]: a histogram from rows grouped by bucket or bin. */
export const countPer = (key: string, length: number) =>
  sql.raw(
    `array[${Array.from({ length }, (_, i) => `coalesce(sum(arrived) filter (where ${key} = ${i}), 0)`).join(', ')}]::int[]`,
  );

export interface RollupRun {
  /** Minute cells (campaign × minute) recomputed. */
  cells: number;
  /** Outcomes written before this instant are in the rollups (RFC 3339, µs). */
  watermark: string;
}

/** Above this many minute cells a run joins whole tables (hash joins) rather than looking cells up. */
const MANY_CELLS = 2000;

/** Arbitrary constant: one rollup job at a time across collectors sharing a database. */
const ROLLUP_LOCK = 0x5d_2022;

/**
 * Brings the rollups up to date with every outcome written before the new watermark.
 * `manyCells`: above this many minute cells a run joins whole tables (default MANY_CELLS).
 */
export async function rollUpOutcomes(db: Db, options: { manyCells?: number } = {}): Promise<RollupRun> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${ROLLUP_LOCK})`);
    await tx.execute(sql`set local jit = off`);
    const [prev] = await rows<{ w: string }>(
      tx,
      sql`select ${isoMicros(sql`watermark`)} as w from rollup_watermark where id = 1`,
    );
    const watermark = await nextWatermark(tx);
    await tx.execute(sql`create temp table rollup_dirty (campaign_id uuid not null, bucket timestamptz not null,
      primary key (campaign_id, bucket)) on commit drop`);
    const since = prev ? sql`o.updated_at >= ${prev.w}::timestamptz and` : sql``;
    const [dirty] = await rows<{ n: number }>(
      tx,
      sql`with d as (insert into rollup_dirty
            select distinct c.campaign_id, ${bucketOf('minute', sql`c.send_at`)}
            from outcomes o join canaries c on c.id = o.canary_id
            where ${since} o.updated_at < ${watermark}::timestamptz
            returning 1)
          select count(*)::int as n from d`,
    );
    await tx.execute(sql`analyze rollup_dirty`);
    if (dirty!.n > 0) {
      // Many cells: hash joins over everything; a few: index lookups per cell.
      const many = dirty!.n > (options.manyCells ?? MANY_CELLS);
      await recomputeMinutes(tx, many);
      if (many) await tx.execute(sql`analyze outcome_rollups`);
      await recomputeFromFiner(tx, 'hour', 'minute', many);
      await recomputeFromFiner(tx, 'day', 'hour', many);
      for (const grain of GRAINS) await recomputeTotals(tx, grain, many);
    }
    await tx.execute(sql`insert into rollup_watermark (id, watermark, updated_at)
      values (1, ${watermark}::timestamptz, now())
      on conflict (id) do update set watermark = excluded.watermark, updated_at = now()`);
    return { cells: dirty!.n, watermark };
  });
}

/**
 * A new watermark: now(), or the start of the oldest other transaction still open. Its own
 * statement, so that every transaction that started before it has committed or aborted by the
 * time the caller's next statement takes its snapshot (read committed): every write stamped
 * below it is visible from then on.
 */
export async function nextWatermark(tx: Queryable): Promise<string> {
  const [next] = await rows<{ w: string }>(
    tx,
    sql`select ${isoMicros(sql`least(now(), (select min(xact_start) from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid() and xact_start is not null))`)} as w`,
  );
  return next!.w;
}

const ROW_COLUMNS = [
  'grain',
  'bucket',
  'campaign_id',
  'scoped',
  'kind',
  'platform',
  'conversation_kind',
  'sender_region',
  'recipient_region',
  ...STATUSES,
  'latency',
  'bins',
];

async function recomputeMinutes(q: Queryable, many: boolean): Promise<void> {
  await q.execute(sql`delete from outcome_rollups r using rollup_dirty d
    where r.grain = 'minute' and r.campaign_id = d.campaign_id and r.bucket = d.bucket`);
  // Per cell, latency bucket and /latency bin first, then one row per cell at both levels (grouping sets).
  await q.execute(sql`insert into outcome_rollups (${ids(ROW_COLUMNS)})
    select 'minute', bucket, campaign_id, grouping(platform) = 0, kind, coalesce(platform, ''),
      coalesce(ck, ''), coalesce(sr, ''), coalesce(rr, ''), ${statusSums()},
      ${countPer('lb', LATENCY_BUCKETS)}, ${countPer('bn', LATENCY_BINS)}
    from (
      select d.bucket, c.campaign_id, c.kind, cv.platform, cv.kind as ck, s.region as sr, r.region as rr,
        ${LATENCY_BUCKET} as lb, ${LATENCY_BIN} as bn, ${STATUS_COUNTS},
        count(*) filter (where ${LATENCY_BUCKET} is not null) as arrived
      from rollup_dirty d
        ${
          many
            ? sql`join canaries c on c.campaign_id = d.campaign_id and ${bucketOf('minute', sql`c.send_at`)} = d.bucket`
            : // offset 0 keeps the subquery per cell: an index range scan of canaries (send_at, id)
              sql`cross join lateral (select * from canaries c where c.campaign_id = d.campaign_id
                and c.send_at >= d.bucket and c.send_at < d.bucket + interval '1 minute' offset 0) c`
        }
        join outcomes o on o.canary_id = c.id and ${sameDeadline('o', 'c')}
        join accounts s on s.id = c.sender_account_id
        join accounts r on r.id = o.recipient_account_id
        join conversations cv on cv.id = c.conversation_id
      group by 1, 2, 3, 4, 5, 6, 7, 8, 9) g
    group by grouping sets ((bucket, campaign_id, kind, platform, ck, sr, rr), (bucket, campaign_id, kind))`);
}

async function recomputeFromFiner(q: Queryable, grain: Grain, finer: Grain, many: boolean): Promise<void> {
  const cells = sql`(select distinct campaign_id, ${bucketOf(grain, sql`bucket`)} as bucket from rollup_dirty)`;
  await q.execute(sql`delete from outcome_rollups r using ${cells} h
    where r.grain = ${grain} and r.campaign_id = h.campaign_id and r.bucket = h.bucket`);
  await q.execute(sql`insert into outcome_rollups (${ids(ROW_COLUMNS)})
    select ${grain}, h.bucket, r.campaign_id, r.scoped, r.kind, r.platform, r.conversation_kind,
      r.sender_region, r.recipient_region, ${statusSums('r.')}, ${sumHistograms('r.latency')},
      ${sumBins('r.bins')}
    from ${cells} h
      ${
        many
          ? sql`join outcome_rollups r on r.grain = ${finer} and r.campaign_id = h.campaign_id
              and ${bucketOf(grain, sql`r.bucket`)} = h.bucket`
          : sql`cross join lateral (select * from outcome_rollups r where r.grain = ${finer}
              and r.campaign_id = h.campaign_id and r.bucket >= h.bucket and r.bucket < h.bucket + ${STEP[grain]}
              offset 0) r`
      }
    group by h.bucket, r.campaign_id, r.scoped, r.kind, r.platform, r.conversation_kind,
      r.sender_region, r.recipient_region`);
}

/** The rows over every campaign of the grain's buckets holding a dirty minute, from the per-campaign rows. */
async function recomputeTotals(q: Queryable, grain: Grain, many: boolean): Promise<void> {
  const cells = sql`(select distinct ${bucketOf(grain, sql`bucket`)} as bucket from rollup_dirty)`;
  await q.execute(sql`delete from outcome_rollup_totals t using ${cells} h
    where t.grain = ${grain} and t.bucket = h.bucket`);
  await q.execute(sql`insert into outcome_rollup_totals (${ids(ROW_COLUMNS.filter((c) => c !== 'campaign_id'))})
    select ${grain}, h.bucket, r.scoped, r.kind, r.platform, r.conversation_kind,
      r.sender_region, r.recipient_region, ${statusSums('r.')}, ${sumHistograms('r.latency')},
      ${sumBins('r.bins')}
    from ${cells} h
      ${
        many
          ? sql`join outcome_rollups r on r.grain = ${grain} and r.bucket = h.bucket`
          : // both values of scoped: the primary key (grain, scoped, bucket, …) is then an index range per bucket
            sql`cross join lateral (select * from outcome_rollups r where r.grain = ${grain}
              and r.scoped = any(array[false, true]) and r.bucket = h.bucket offset 0) r`
      }
    group by h.bucket, r.scoped, r.kind, r.platform, r.conversation_kind, r.sender_region, r.recipient_region`);
}

/** How the rollups answer a query: the grain of the rows read, and whether per scope. */
export interface RollupPlan {
  grain: Grain;
  scoped: boolean;
}

/** Axes over rollup rows aliased r (bucket, kind, scope columns), as AXIS_SQL over the outcomes. */
export const ROLLUP_AXIS: Partial<Record<AggregationAxis, SQL>> = {
  minute: sql`to_char(date_trunc('minute', r.bucket at time zone 'UTC'), 'YYYY-MM-DD"T"HH24:MI:00.000"Z"')`,
  hour: sql`to_char(date_trunc('hour', r.bucket at time zone 'UTC'), 'YYYY-MM-DD"T"HH24:00:00.000"Z"')`,
  day: sql`to_char(date_trunc('day', r.bucket at time zone 'UTC'), 'YYYY-MM-DD"T"00:00:00.000"Z"')`,
  sender_region: sql`r.sender_region`,
  recipient_region: sql`r.recipient_region`,
  conversation_kind: sql`r.conversation_kind`,
  platform: sql`r.platform`,
  kind: sql`r.kind`,
  campaign: sql`r.campaign_id::text`,
};
const SCOPE_AXES: readonly AggregationAxis[] = [
  'sender_region',
  'recipient_region',
  'conversation_kind',
  'platform',
];

const aligned = (d: Date | undefined, g: Grain) => d === undefined || d.getTime() % GRAIN_MS[g] === 0;

/** The plan when the rollups answer this query exactly (counts), null when only the outcomes can. */
export function rollupPlan(filter: OutcomeFilter, axes: readonly AggregationAxis[]): RollupPlan | null {
  if (filter.termSet || filter.verdicts?.length || filter.probe) return null;
  if (axes.some((a) => !ROLLUP_AXIS[a])) return null;
  const st = filter.statuses;
  if (st?.length && st.includes('delivered') !== st.includes('delayed')) return null;
  // The finest time axis asked (group_by=day,minute reads minute rows).
  const times = axes.map((a) => GRAINS.indexOf(a as Grain)).filter((i) => i >= 0);
  const finest = times.length > 0 ? Math.min(...times) : GRAINS.length - 1;
  const scoped =
    axes.some((a) => SCOPE_AXES.includes(a)) ||
    !!filter.platform ||
    !!filter.senderRegions?.length ||
    !!filter.recipientRegions?.length ||
    !!filter.conversationKind;
  for (let i = finest; i >= 0; i--) {
    const grain = GRAINS[i]!;
    if (aligned(filter.from, grain) && aligned(filter.to, grain)) return { grain, scoped };
  }
  return null;
}

/** Canaries `c` joined to their outcomes and what the rollups group by (no sealing: no rollup query needs it). */
const RAW_JOINS = sql`join outcomes o on o.canary_id = c.id and ${sameDeadline('o', 'c')}
  join accounts s on s.id = c.sender_account_id
  join accounts r on r.id = o.recipient_account_id
  join conversations cv on cv.id = c.conversation_id`;

/** countByAxes from the rollups, plus the outcomes of cells written since the watermark. */
export async function countByAxesFromRollups(
  q: Queryable,
  filter: OutcomeFilter,
  axes: readonly AggregationAxis[],
  plan: RollupPlan,
): Promise<GroupedCounts[]> {
  const histogram = new Float64Array(LATENCY_BUCKETS);
  return (await readRollupCells(q, filter, axes, plan, false)).map((row) => {
    const latency = parseHistogram(row.latency, histogram);
    return {
      ...row.counts,
      latency_p50_ms: quantileFromHistogram(latency, 0.5),
      latency_p95_ms: quantileFromHistogram(latency, 0.95),
      k: row.k,
    };
  });
}

/**
 * /api/v1/latency from the rollups (decision 032): the bins exactly, the quantiles within
 * LATENCY_RELATIVE_ERROR; `plan` as rollupPlan(filter, []) gives it.
 */
export async function latencyFromRollups(
  q: Queryable,
  filter: OutcomeFilter,
  plan: RollupPlan,
): Promise<LatencyCounts[]> {
  const found = await readRollupCells(q, filter, ['kind'], plan, true);
  return (['test', 'control'] as const).map((kind) => {
    const row = found.find((r) => r.k[0] === kind);
    const latency = parseHistogram(row?.latency ?? '', new Float64Array(LATENCY_BUCKETS));
    const counts = [...parseHistogram(row?.bins ?? '', new Float64Array(LATENCY_BINS))];
    return {
      kind,
      counts,
      n: counts.reduce((a, b) => a + b, 0),
      p50: quantileFromHistogram(latency, 0.5),
      p90: quantileFromHistogram(latency, 0.9),
      p95: quantileFromHistogram(latency, 0.95),
      p99: quantileFromHistogram(latency, 0.99),
    };
  });
}

interface RollupCellRow {
  k: (string | null)[];
  counts: Record<(typeof STATUSES)[number], number>;
  /** The latency histogram as text (parseHistogram). */
  latency: string;
  /** The /latency bins as text, '' unless asked for. */
  bins: string;
}

/**
 * The rollups' rows at the plan's grain and scope, grouped by the axes, plus the outcomes of the
 * cells written since the watermark; one statement, one snapshot. `withBins`: also the /latency
 * bins (a second, short array through the same sums).
 */
async function readRollupCells(
  q: Queryable,
  filter: OutcomeFilter,
  axes: readonly AggregationAxis[],
  plan: RollupPlan,
  withBins: boolean,
): Promise<RollupCellRow[]> {
  const { grain, scoped } = plan;
  const k = axes.map((_, i) => `k${i}`);
  const keys = ids(k);
  const from = filter.from?.toISOString();
  const to = filter.to?.toISOString();
  // Over every campaign, not grouped by campaign: the totals (one row per bucket and scope,
  // whatever the number of campaigns); a bucket with any dirty cell is read from the outcomes.
  const totals = !filter.campaign && !axes.includes('campaign');
  const dirtyWhere: SQL[] = [sql`o.updated_at >= (select w from wm)`];
  if (filter.campaign) dirtyWhere.push(sql`c.campaign_id = ${filter.campaign}::uuid`);
  if (from) dirtyWhere.push(sql`c.send_at >= ${from}::timestamptz`);
  if (to) dirtyWhere.push(sql`c.send_at < ${to}::timestamptz`);

  // Grain and scope as literals, not parameters: both come from the plan (never from a
  // client), and with parameters Postgres spent ~25 ms more planning this query each time.
  const rollWhere: SQL[] = [
    sql.raw(`r.grain = '${grain}'`),
    sql.raw(`r.scoped = ${scoped ? 'true' : 'false'}`),
  ];
  if (filter.campaign) rollWhere.push(sql`r.campaign_id = ${filter.campaign}::uuid`);
  if (filter.platform) rollWhere.push(sql`r.platform = ${filter.platform}`);
  if (filter.kind) rollWhere.push(sql`r.kind = ${filter.kind}`);
  if (filter.senderRegions?.length)
    rollWhere.push(sql`r.sender_region = any(${sql.param(filter.senderRegions)}::text[])`);
  if (filter.recipientRegions?.length)
    rollWhere.push(sql`r.recipient_region = any(${sql.param(filter.recipientRegions)}::text[])`);
  if (filter.conversationKind) rollWhere.push(sql`r.conversation_kind = ${filter.conversationKind}`);
  if (from) rollWhere.push(sql`r.bucket >= ${from}::timestamptz`);
  if (to) rollWhere.push(sql`r.bucket < ${to}::timestamptz`);
  rollWhere.push(
    totals
      ? sql`not exists (select 1 from dirty d where d.bucket = r.bucket)`
      : sql`not exists (select 1 from dirty d where d.campaign_id = r.campaign_id and d.bucket = r.bucket)`,
  );

  const wanted = (s: string) => !filter.statuses?.length || filter.statuses.includes(s);
  const rollCounts = STATUSES.map((s) => (wanted(s) ? sql.raw(`sum(r.${s}) as ${s}`) : sql.raw(`0 as ${s}`)));
  const arrivedWanted = wanted('delivered');
  const rollLatency = arrivedWanted
    ? sumHistograms('r.latency')
    : sql.raw(`array_fill(0, array[${LATENCY_BUCKETS}])`);
  // Without bins: an empty array all the way, summed by nothing.
  const rollBins = !withBins
    ? sql.raw(`'{}'::int[]`)
    : arrivedWanted
      ? sumBins('r.bins')
      : sql.raw(`array_fill(0, array[${LATENCY_BINS}])`);
  const castAll = sql.raw(STATUSES.map((s) => `${s}::int as ${s}`).join(', '));
  const sameKeys = sql.raw(k.map((x) => `f.${x} is not distinct from r.${x}`).join(' and '));
  const rawHistogram = countPer('lb', LATENCY_BUCKETS);
  const rawBins = withBins ? countPer('bn', LATENCY_BINS) : sql.raw(`'{}'::int[]`);
  const mergedBins = withBins ? sumBins('bins') : sql.raw(`'{}'::int[]`);
  // The histogram sums make a long expression: compiling it (JIT) costs seconds, reading rows
  // milliseconds. Inside a transaction (research reads are) this holds for this read only.
  await q.execute(sql`set local jit = off`);
  // The histogram as text: splitting it costs a fraction of parsing an int[] literal.
  const found = await rows<Record<string, unknown> & { latency: string; bins: string }>(
    q,
    sql`with wm as (select coalesce(max(watermark), '-infinity'::timestamptz) as w from rollup_watermark),
      dirty as materialized (
        select distinct ${totals ? sql`null::uuid` : sql`c.campaign_id`} as campaign_id,
          ${bucketOf(grain, sql`c.send_at`)} as bucket
        from outcomes o
          -- each outcome written since the watermark, then its canary by primary key (offset 0
          -- keeps it a lookup per outcome: not knowing the watermark, the planner expects a third
          -- of all outcomes, and with a campaign filter it hashed every canary of the campaign,
          -- 2.5 s at 50M outcomes where none had changed)
          cross join lateral (select c.campaign_id, c.send_at from canaries c where c.id = o.canary_id offset 0) c
        where ${whereClause(dirtyWhere)}),
      roll as (
        select ${sql.join(
          axes.map((a, i) => sql`${ROLLUP_AXIS[a]!} as ${sql.identifier(`k${i}`)}`),
          sql`, `,
        )}, ${sql.join(rollCounts, sql`, `)}, ${rollLatency} as latency, ${rollBins} as bins
        from ${totals ? sql`outcome_rollup_totals` : sql`outcome_rollups`} r where ${whereClause(rollWhere)}
        group by ${keys}),
      fresh_lb as (
        select ${sql.join(
          axes.map((a, i) => sql`${AXIS_SQL[a]} as ${sql.identifier(`k${i}`)}`),
          sql`, `,
        )}, ${LATENCY_BUCKET} as lb, ${withBins ? LATENCY_BIN : sql`null::int`} as bn,
          ${STATUS_COUNTS}, count(*) filter (where ${LATENCY_BUCKET} is not null) as arrived
        -- offset 0 keeps the subquery per cell: nothing is read when no cell is dirty
        from dirty d
          cross join lateral (select * from canaries c where ${totals ? sql`` : sql`c.campaign_id = d.campaign_id and`}
            c.send_at >= d.bucket and c.send_at < d.bucket + ${STEP[grain]} offset 0) c
          ${RAW_JOINS}
        where ${whereClause(outcomeConditions(filter))}
        group by ${keys}, lb, bn),
      fresh as (select ${keys}, ${statusSums()}, ${rawHistogram} as latency, ${rawBins} as bins
        from fresh_lb group by ${keys}),
      -- A key in both: its rollup and fresh parts summed. Histograms are summed only for those
      -- keys (summing 122 buckets is the costly part): usually none, as no cell is dirty.
      merged as (
        select ${keys}, ${statusSums()}, ${sumHistograms('latency')} as latency, ${mergedBins} as bins
        from (select * from roll r where exists (select 1 from fresh f where ${sameKeys})
              union all select * from fresh) p
        group by ${keys})
    select ${keys}, ${castAll}, array_to_string(latency, ',') as latency, array_to_string(bins, ',') as bins
    from (select * from roll r where not exists (select 1 from fresh f where ${sameKeys})
          union all select * from merged) x
    where ${sql.raw(STATUSES.join(' + '))} > 0
    order by ${keys}`,
  );
  return found.map((row) => ({
    k: axes.map((_, i) => (row[`k${i}`] ?? null) as string | null),
    counts: Object.fromEntries(STATUSES.map((s) => [s, Number(row[s])])) as RollupCellRow['counts'],
    latency: row.latency,
    bins: row.bins ?? '',
  }));
}
