/**
 * Rollups of outcomes per campaign, term set and arm (decision 033), so that the terms view's
 * list (`/api/v1/term-sets`) reads term sets × campaigns × 2 rows instead of every outcome.
 *
 * A term set is public only once its canary is final (research-filters.ts: deadline passed and
 * no outcome pending), and that changes with time without any write. So these rollups count
 * only canaries that were final when counted, and reads take from the outcomes everything the
 * rollups cannot vouch for:
 *
 * - Per campaign, `closed_until` (term_set_rollup_progress): the job counts the campaign's
 *   canaries sent before it, final ones only; it moves forward to GRACE_MS before the
 *   watermark, or to the first send of a canary whose deadline is not that far past.
 * - Canaries sent since `closed_until` are read from the outcomes, sealing applied then.
 * - A term set (campaign, arm) with an outcome written at or after the campaign's watermark on
 *   a canary before `closed_until` is "dirty": the rollup row may be stale (a late receipt, the
 *   finaliser, a canary that was pending when counted), so the whole term set is read from the
 *   outcomes (by the canaries (campaign, term set, arm) index). The job recomputes it.
 *
 * The watermark is decision 022's (the start of the oldest open transaction): outcomes written
 * before it are in the job's snapshot. A job that never ran or lags makes reads slower, never
 * wrong. Like 022, a canary deleted outside its campaign stays counted until its term set is
 * written again.
 *
 * Latency quantiles come from the histogram (rollups.ts: within LATENCY_RELATIVE_ERROR).
 * Filters the rollups hold: campaign, arm (kind) and a send-time window: its whole hours from
 * the hour rows (decision 035; the list from day, quarter-day and hour rows), the parts of an
 * hour at its edges from the outcomes (decision 037). Any other filter (status, scope, probe,
 * verdict) reads the outcomes as before (`termSetRollupsHold`).
 */
import { type SQL, sql } from 'drizzle-orm';
import type { AggregationAxis } from '../../protocol/research.ts';
import { type Db, type Queryable, rows } from './open.ts';
import { sameDeadline, sameDeadlineInSubquery } from './partitions.ts';
import type { GroupedCounts, TermSetCounts } from './research-aggregation.ts';
import { isoMicros, isoMillis, type OutcomeFilter, textArray } from './research-filters.ts';
import {
  countPer,
  LATENCY_BUCKET,
  LATENCY_BUCKETS,
  nextWatermark,
  parseHistogram,
  quantileFromHistogram,
  ROLLUP_AXIS,
  STATUS_COUNTS,
  STATUSES,
  statusSums,
  sumHistograms,
} from './rollups.ts';

/** How long after a canary's deadline the job waits before counting it (the finaliser's time to mark it). */
export const GRACE_MS = 5 * 60_000;

/** Arbitrary constant: one term-set rollup job at a time across collectors sharing a database. */
const TERM_SET_LOCK = 0x5d_2033;

const ids = (cols: readonly string[]) => sql.raw(cols.join(', '));
const COLUMNS = ['campaign_id', 'term_set', 'kind', ...STATUSES, 'latency', 'first_sent_at', 'last_sent_at'];
const HOUR_COLUMNS = [
  'campaign_id',
  'term_set',
  'kind',
  'bucket',
  ...STATUSES,
  'latency',
  'first_sent_at',
  'last_sent_at',
];
/** No outcome of canary `c` is pending (the other half of "final": the deadline, checked apart). */
const NONE_PENDING = sql`not exists (select 1 from outcomes po where po.canary_id = c.id and ${sameDeadlineInSubquery('po', 'c')}
  and po.status = 'pending')`;
/**
 * The outcomes `o` of each canary `c`, and `pe.pending`: whether any is pending. Looked up per
 * canary (offset 0 keeps the subqueries apart): a join let the planner hash every outcome
 * (50M: 30 s) to find those of a few canaries.
 */
const OUTCOMES_PER_CANARY = sql`cross join lateral (select * from outcomes o where o.canary_id = c.id
    and ${sameDeadline('o', 'c')} offset 0) o
  cross join lateral (select exists (select 1 from outcomes po where po.canary_id = c.id
    and ${sameDeadlineInSubquery('po', 'c')} and po.status = 'pending') as pending offset 0) pe`;
/** Above this many canaries to add, a job run joins whole tables (hash joins) rather than looking each up. */
const MANY_CANARIES = 50_000;
const SUMS = statusSums();

/**
 * The grains the job writes: all time (term_set_rollups), and the hour, the quarter of a day (six
 * hours from midnight) and the day of the send (UTC).
 */
type Grain = 'all' | 'hour' | 'quarter' | 'day';
/** The hour of a canary's send time (UTC), as term_set_hour_rollups' bucket. */
const SEND_HOUR = sql`(date_trunc('hour', c.send_at at time zone 'UTC') at time zone 'UTC')`;
/** Per grain: the table, its columns, and the key an upsert meets. */
const TABLES: Record<Grain, { table: string; columns: string[]; key: string }> = {
  all: { table: 'term_set_rollups', columns: COLUMNS, key: 'campaign_id, term_set, kind' },
  hour: { table: 'term_set_hour_rollups', columns: HOUR_COLUMNS, key: 'term_set, campaign_id, kind, bucket' },
  quarter: {
    table: 'term_set_quarter_rollups',
    columns: HOUR_COLUMNS,
    key: 'bucket, campaign_id, term_set, kind',
  },
  day: { table: 'term_set_day_rollups', columns: HOUR_COLUMNS, key: 'bucket, campaign_id, term_set, kind' },
};

/**
 * Rows (campaign, term set, arm), or with `hourly` (campaign, term set, arm, hour of the send),
 * aggregated from the outcomes of the canaries `canaries` yields (a FROM item aliased c), those
 * final only: at the watermark `w` for the job, or now (`final` applies the condition, on `c`
 * and `pe.pending`) for a read. `many`: hash joins (the first run reads every canary), else a
 * lookup per canary. The job's rows and a read's outcome part are counted by this one query.
 */
function aggregate(canaries: SQL, final: { w: SQL } | { now: SQL }, many: boolean, hourly = false) {
  const isFinal =
    'now' in final
      ? final.now
      : sql`c.deadline_at < ${final.w} and ${many ? NONE_PENDING : sql`not pe.pending`}`;
  const bucket = hourly ? SEND_HOUR : sql`null::timestamptz`;
  const groups = sql.raw(hourly ? '1, 2, 3, 4' : '1, 2, 3');
  return sql`select campaign_id, term_set, kind${hourly ? sql`, bucket` : sql``}, ${SUMS},
      ${countPer('lb', LATENCY_BUCKETS)} as latency, min(mn) as first_sent_at, max(mx) as last_sent_at
    from (select c.campaign_id, c.term_set, c.kind, ${bucket} as bucket, ${LATENCY_BUCKET} as lb, ${STATUS_COUNTS},
            count(*) filter (where ${LATENCY_BUCKET} is not null) as arrived, min(c.send_at) as mn, max(c.send_at) as mx
          from ${canaries}
            ${many ? sql`join outcomes o on o.canary_id = c.id and ${sameDeadline('o', 'c')}` : OUTCOMES_PER_CANARY}
          where ${isFinal}
          group by 1, 2, 3, 4, 5) g
    group by ${groups}`;
}

export interface TermSetRollupRun {
  /** Campaigns whose closed_until moved. */
  advanced: number;
  /** Term sets (campaign × arm) recomputed because an outcome of theirs was written since the last run. */
  recomputed: number;
  watermark: string;
}

/**
 * Brings term_set_rollups up to date (one transaction, under an advisory lock). `manyCanaries`:
 * above this many canaries to add, the run joins whole tables (default MANY_CANARIES).
 */
export async function rollUpTermSets(
  db: Db,
  options: { manyCanaries?: number } = {},
): Promise<TermSetRollupRun> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${TERM_SET_LOCK})`);
    await tx.execute(sql`set local jit = off`);
    const watermark = await nextWatermark(tx);
    const w = sql`${watermark}::timestamptz`;
    // Where each campaign stood, and where it can close now: GRACE_MS before the watermark, or
    // the first send of a canary whose deadline is not that far past (by campaign × deadline).
    await tx.execute(sql`create temp table ts_progress on commit drop as
      select cp.id as campaign_id, p.closed_until as prev_closed, p.watermark as prev_watermark,
        greatest(p.closed_until, least(${w} - ${sql.raw(`interval '${GRACE_MS} milliseconds'`)},
          (select min(c.send_at) from canaries c where c.campaign_id = cp.id
             and c.deadline_at >= ${w} - ${sql.raw(`interval '${GRACE_MS} milliseconds'`)}))) as closed
      from campaigns cp left join term_set_rollup_progress p on p.campaign_id = cp.id`);
    // Term sets with an outcome written since the last run on a canary already counted for. The
    // oldest previous watermark goes in as a value: as a subquery the planner does not know it
    // and scanned every outcome (31 s a run at 50M).
    const [oldest] = await rows<{ w: string | null }>(
      tx,
      sql`select ${isoMicros(sql`min(prev_watermark)`)} as w from ts_progress`,
    );
    const since = oldest?.w ? sql`${oldest.w}::timestamptz` : sql`'infinity'::timestamptz`;
    await tx.execute(sql`create temp table ts_dirty on commit drop as
      select distinct c.campaign_id, c.term_set, c.kind
      from outcomes o
        -- the outcomes written since the oldest previous watermark (by the updated_at index), then
        -- each one's canary by primary key
        cross join lateral (select c.campaign_id, c.term_set, c.kind, c.send_at from canaries c
          where c.id = o.canary_id offset 0) c
        join ts_progress p on p.campaign_id = c.campaign_id
      where o.updated_at >= ${since} and o.updated_at < ${w} and o.updated_at >= p.prev_watermark and c.send_at < p.prev_closed`);
    // Added to their rows, if final now: the canaries sent in [previous closed_until, closed_until),
    // and those sent before it whose deadline passed since the last run (a canary can be
    // planned with a send time before the line; it is read from the outcomes until counted).
    const add = sql.raw(
      [
        ...STATUSES.map((s) => `${s} = t.${s} + excluded.${s}`),
        `latency = (select array_agg(a + b order by i)::int[]
         from unnest(t.latency, excluded.latency) with ordinality x(a, b, i))`,
        'first_sent_at = least(t.first_sent_at, excluded.first_sent_at)',
        'last_sent_at = greatest(t.last_sent_at, excluded.last_sent_at)',
      ].join(', '),
    );
    const toAdd = sql`ts_progress p cross join lateral (
      -- two index ranges, not one OR (which scanned every canary on each run)
      select * from canaries c where c.campaign_id = p.campaign_id
        and c.send_at >= coalesce(p.prev_closed, '-infinity') and c.send_at < p.closed
      union all
      select * from canaries c where c.campaign_id = p.campaign_id
        and c.deadline_at >= p.prev_watermark and c.deadline_at < ${w} and c.send_at < p.prev_closed) c`;
    const [adding] = await rows<{ n: number }>(tx, sql`select count(*)::int as n from ${toAdd}`);
    if (adding!.n > 0) {
      const many = adding!.n > (options.manyCanaries ?? MANY_CANARIES);
      await writeGrains(
        tx,
        aggregate(toAdd, { w }, many, true),
        (key) => sql`on conflict (${sql.raw(key)}) do update set ${add}`,
      );
    }
    // Dirty term sets: recomputed whole, up to the new closed_until.
    const [recomputed] = await rows<{ n: number }>(tx, sql`select count(*)::int as n from ts_dirty`);
    if (recomputed!.n > 0) {
      const dirtyCanaries = sql`ts_dirty d join ts_progress p on p.campaign_id = d.campaign_id
        cross join lateral (select * from canaries c where c.campaign_id = d.campaign_id
          and c.term_set = d.term_set and c.kind = d.kind and c.send_at < p.closed offset 0) c`;
      for (const { table } of Object.values(TABLES)) {
        await tx.execute(sql`delete from ${sql.raw(table)} t using ts_dirty d
          where t.campaign_id = d.campaign_id and t.term_set = d.term_set and t.kind = d.kind`);
      }
      await writeGrains(tx, aggregate(dirtyCanaries, { w }, false, true), () => sql``);
    }
    const moved = await rows<{ n: number }>(
      tx,
      sql`select count(*)::int as n from ts_progress where closed is distinct from prev_closed`,
    );
    await tx.execute(sql`insert into term_set_rollup_progress (campaign_id, closed_until, watermark)
      select campaign_id, coalesce(closed, '-infinity'), ${w} from ts_progress
      on conflict (campaign_id) do update set closed_until = excluded.closed_until, watermark = excluded.watermark`);
    return { advanced: moved[0]!.n, recomputed: recomputed!.n, watermark };
  });
}

/**
 * Writes the rows of every grain from one aggregation by hour (`hours`: aggregate(…, hourly), the
 * costly part, which reads every outcome of the canaries): the hour rows as they are, the
 * quarter-day, day and all-time rows summed from them. `conflict` ends each insert (an upsert
 * that adds, or nothing).
 */
async function writeGrains(tx: Queryable, hours: SQL, conflict: (key: string) => SQL): Promise<void> {
  await tx.execute(sql`create temp table ts_hours on commit drop as ${hours}`);
  const sums = (
    bucket: SQL | null,
  ) => sql`select campaign_id, term_set, kind${bucket ? sql`, ${bucket}` : sql``},
      ${SUMS}, ${sumHistograms('latency')} as latency, min(first_sent_at), max(last_sent_at)
    from ts_hours group by ${sql.raw(bucket ? '1, 2, 3, 4' : '1, 2, 3')}`;
  const from: Record<Grain, SQL> = {
    hour: sql`select ${ids(HOUR_COLUMNS)} from ts_hours`,
    quarter: sums(sql`date_bin('6 hours', bucket, '1970-01-01T00:00:00Z'::timestamptz)`),
    day: sums(sql`date_trunc('day', bucket at time zone 'UTC') at time zone 'UTC'`),
    all: sums(null),
  };
  for (const [grain, { table, columns, key }] of Object.entries(TABLES) as [
    Grain,
    (typeof TABLES)[Grain],
  ][]) {
    await tx.execute(
      sql`insert into ${sql.raw(table)} as t (${ids(columns)}) ${from[grain]} ${conflict(key)}`,
    );
  }
  await tx.execute(sql`drop table ts_hours`);
}

/**
 * Whether the term-set rollups hold this filter: campaign, arm and send-time window (`from`,
 * `to`; decision 037) only.
 */
export function termSetRollupsHold(filter: OutcomeFilter): boolean {
  const { campaign: _c, kind: _k, from: _f, to: _t, ...rest } = filter;
  return Object.values(rest).every((v) => v === undefined || (Array.isArray(v) && v.length === 0));
}

/**
 * The parts every read of these rollups shares (one statement, one snapshot), as CTEs:
 * `prog` (per campaign: closed line and watermark), `dirty` (campaign, term set, arm with an
 * outcome written at or after the watermark on a canary before the line: its rows are not used)
 * and `fresh_canaries` (read from the outcomes: every canary sent since the line or not final
 * at the watermark, and every canary of a dirty term set). `filter`: campaign, arm and at most
 * one term set.
 */
async function readParts(
  q: Queryable,
  filter: OutcomeFilter,
): Promise<{ ctes: SQL; kind: (alias: string) => SQL }> {
  const campaign = filter.campaign ? sql`where cp.id = ${filter.campaign}::uuid` : sql``;
  const kind = (alias: string) => (filter.kind ? sql`and ${sql.raw(alias)}.kind = ${filter.kind}` : sql``);
  const termSet = filter.termSet ? sql`and c.term_set = ${textArray(filter.termSet)}` : sql``;
  await q.execute(sql`set local jit = off`);
  // The oldest watermark and closed line as values (lower bounds: both only move on), so that the
  // planner reads what was written since, and the canaries due since, by their indexes; taken
  // from the statement's rows it scanned every outcome, then every canary (11 s at 50M).
  const [oldest] = await rows<{ w: string | null; closed: string | null; open: boolean }>(
    q,
    sql`select ${isoMicros(sql`min(p.watermark)`)} as w, ${isoMicros(sql`min(p.closed_until)`)} as closed,
          bool_or(p.campaign_id is null) as open
        from campaigns cp left join term_set_rollup_progress p on p.campaign_id = cp.id ${campaign}`,
  );
  const since = oldest?.w ? sql`${oldest.w}::timestamptz` : sql`'infinity'::timestamptz`;
  // A campaign the job has not seen yet is read whole.
  const closedBound =
    oldest?.closed && !oldest.open ? sql`${oldest.closed}::timestamptz` : sql`'-infinity'::timestamptz`;
  const ctes = sql`prog as materialized (
        select cp.id as campaign_id, coalesce(p.closed_until, '-infinity') as closed,
          coalesce(p.watermark, '-infinity') as watermark
        from campaigns cp left join term_set_rollup_progress p on p.campaign_id = cp.id ${campaign}),
      dirty as materialized (
        select distinct c.campaign_id, c.term_set, c.kind
        from outcomes o
          -- each outcome written since the oldest watermark, then its canary by primary key
          cross join lateral (select c.campaign_id, c.term_set, c.kind, c.send_at from canaries c
            where c.id = o.canary_id offset 0) c
          join prog p on p.campaign_id = c.campaign_id
        where o.updated_at >= ${since}
          and o.updated_at >= p.watermark and c.send_at < p.closed ${kind('c')} ${termSet}),
      fresh_canaries as (
        select c.id, c.campaign_id, c.term_set, c.kind, c.send_at, c.deadline_at from prog p
          -- not counted: sent since closed_until, or not final at the watermark (the deadline is
          -- after closed_until either way, so the campaign × deadline index finds them)
          cross join lateral (select * from canaries c where c.campaign_id = p.campaign_id
            and c.deadline_at >= ${closedBound} and c.deadline_at >= p.closed
            and (c.send_at >= p.closed or c.deadline_at >= p.watermark) ${termSet} offset 0) c
        union all
        select c.id, c.campaign_id, c.term_set, c.kind, c.send_at, c.deadline_at
        from dirty d join prog p on p.campaign_id = d.campaign_id
          cross join lateral (select * from canaries c where c.campaign_id = d.campaign_id
            and c.term_set = d.term_set and c.kind = d.kind and c.send_at < p.closed
            and c.deadline_at < p.watermark offset 0) c)`;
  return { ctes, kind };
}

/** Final now: deadline passed (database clock) and no outcome pending; as research-filters' SEALED. */
const FINAL_NOW = sql`c.deadline_at <= now() and not pe.pending`;

/**
 * countByTermSet from the rollups: the rows of term sets not written since the watermark, plus
 * from the outcomes (sealing applied now) every canary sent since its campaign's closed_until
 * and every canary of a dirty term set. One statement, one snapshot.
 */
export async function countByTermSetFromRollups(
  q: Queryable,
  filter: OutcomeFilter,
  limit: number,
): Promise<TermSetCounts[]> {
  const { ctes, kind } = await readParts(q, { campaign: filter.campaign, kind: filter.kind });
  // Within a time window the rows of its whole days, of the whole quarters of a day beside them,
  // and of the whole hours beside those (decision 037), else one row per campaign, term set and arm.
  const window = wholeHours(filter.from, filter.to);
  const windowed = filter.from !== undefined || filter.to !== undefined;
  const spans = windowed ? wholeSpans(window.whole) : [{ grain: 'all' as const, range: {} }];
  const rolled = (spans.length > 0 ? spans : [{ grain: 'day' as const, range: null }]).map(
    ({ grain, range }) => sql`select ${ids(COLUMNS.map((col) => `t.${col}`))}
      from ${sql.raw(TABLES[grain].table)} t join prog p on p.campaign_id = t.campaign_id
      where not exists (select 1 from dirty d
        where d.campaign_id = t.campaign_id and d.term_set = t.term_set and d.kind = t.kind) ${kind('t')}
        ${grain === 'all' ? sql`` : within(sql`t.bucket`, range)}`,
  );
  const found = await rows<
    Record<(typeof STATUSES)[number], number> & {
      term_set: string[];
      kind: 'test' | 'control';
      latency: string;
      first_sent_at: string;
      last_sent_at: string;
    }
  >(
    q,
    sql`with ${ctes},
      rolled as (${sql.join(rolled, sql` union all `)}),
      fresh as (${aggregate(windowCanaries(filter, kind, window), { now: sql`${FINAL_NOW} ${kind('c')}` }, false)}),
      per as (
        select term_set, kind, ${SUMS}, ${sumHistograms('latency')} as latency,
          min(first_sent_at) as first_sent_at, max(last_sent_at) as last_sent_at
        from (select * from rolled union all select * from fresh) x
        group by term_set, kind),
      sets as (select term_set from per group by term_set order by min(first_sent_at), term_set limit ${limit})
    select per.term_set, per.kind, ${ids(STATUSES.map((s) => `per.${s}`))},
      array_to_string(per.latency, ',') as latency,
      ${isoMillis(sql`per.first_sent_at`)} as first_sent_at, ${isoMillis(sql`per.last_sent_at`)} as last_sent_at
    from per join sets on sets.term_set = per.term_set`,
  );
  const histogram = new Float64Array(LATENCY_BUCKETS);
  return found.map((r) => {
    const latency = parseHistogram(r.latency, histogram);
    return {
      term_set: r.term_set,
      kind: r.kind,
      ...statusesOf(r),
      latency_p50_ms: quantileFromHistogram(latency, 0.5),
      latency_p95_ms: quantileFromHistogram(latency, 0.95),
      first_sent_at: r.first_sent_at,
      last_sent_at: r.last_sent_at,
    };
  });
}

const statusesOf = (r: Record<string, unknown>) =>
  Object.fromEntries(STATUSES.map((s) => [s, Number(r[s])])) as Record<(typeof STATUSES)[number], number>;

/** Axes the hourly rows answer: an hour or a day of the send time, and the arm. */
const TIMELINE_AXES: readonly AggregationAxis[] = ['hour', 'day', 'kind'];

/**
 * Whether term_set_hour_rollups answer `/aggregation` with this filter and these axes: one term
 * set (`terms=`), campaign, arm and send-time window (`from`, `to`) filters only, grouped by hour
 * or day and arm (the terms view's timeline of one term set).
 */
export function termSetTimelineHolds(filter: OutcomeFilter, axes: readonly AggregationAxis[]): boolean {
  const { termSet, ...rest } = filter;
  return (
    termSet !== undefined &&
    axes.length > 0 &&
    axes.every((a) => TIMELINE_AXES.includes(a)) &&
    termSetRollupsHold(rest)
  );
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * A send-time window [from, to) split into its whole hours [start, end), which hour rows answer
 * (`null`: none), and the parts of an hour at its edges, which the outcomes answer.
 */
export function wholeHours(
  from: Date | undefined,
  to: Date | undefined,
): { whole: { start?: Date; end?: Date } | null; edges: { from?: Date; to?: Date }[] } {
  const start = from && new Date(Math.ceil(from.getTime() / HOUR_MS) * HOUR_MS);
  const end = to && new Date(Math.floor(to.getTime() / HOUR_MS) * HOUR_MS);
  if (from && to && from >= to) return { whole: null, edges: [] };
  if (start && end && start >= end) return { whole: null, edges: [{ from, to }] };
  const edges: { from?: Date; to?: Date }[] = [];
  if (from && start && from < start) edges.push({ from, to: start });
  if (to && end && end < to) edges.push({ from: end, to });
  return { whole: { start, end }, edges };
}

/** The grains a window's whole hours are read from, coarsest first, with their length. */
const SPANS = [
  { grain: 'day', ms: DAY_MS },
  { grain: 'quarter', ms: DAY_MS / 4 },
  { grain: 'hour', ms: HOUR_MS },
] as const;

type Range = { start?: Date; end?: Date };

/**
 * A window's whole hours (wholeHours) split into the ranges each grain answers: its whole UTC
 * days, the whole quarters of a day beside them, and the whole hours beside those; coarsest
 * first, at most one day range, two quarter ranges and two hour ranges, none empty. An open end
 * stays open (in the coarsest grain).
 */
export function wholeSpans(
  whole: Range | null,
  level = 0,
): { grain: 'day' | 'quarter' | 'hour'; range: Range }[] {
  if (!whole) return [];
  const { grain, ms } = SPANS[level]!;
  if (level === SPANS.length - 1) return [{ grain, range: whole }];
  const start = whole.start && new Date(Math.ceil(whole.start.getTime() / ms) * ms);
  const end = whole.end && new Date(Math.floor(whole.end.getTime() / ms) * ms);
  if (start && end && start >= end) return wholeSpans(whole, level + 1);
  return [
    { grain, range: { start, end } },
    ...(whole.start && start && whole.start < start
      ? wholeSpans({ start: whole.start, end: start }, level + 1)
      : []),
    ...(whole.end && end && end < whole.end ? wholeSpans({ start: end, end: whole.end }, level + 1) : []),
  ];
}

/** `col` within [start, end) (either end open when absent). */
function within(col: SQL, range: Range | null): SQL {
  if (!range) return sql`and false`;
  return sql`${range.start ? sql`and ${col} >= ${range.start.toISOString()}::timestamptz` : sql``}
    ${range.end ? sql`and ${col} < ${range.end.toISOString()}::timestamptz` : sql``}`;
}

/**
 * What a read takes from the outcomes (a FROM item aliased c): readParts' `fresh_canaries` sent
 * in the window's whole hours, and every canary sent in its edges (of the filter's campaign, arm
 * and term set, if any; by the send-time indexes). Without a window, `fresh_canaries` alone.
 */
function windowCanaries(
  filter: OutcomeFilter,
  kind: (alias: string) => SQL,
  window: ReturnType<typeof wholeHours>,
): SQL {
  const campaign = filter.campaign ? sql`and c.campaign_id = ${filter.campaign}::uuid` : sql``;
  const termSet = filter.termSet ? sql`and c.term_set = ${textArray(filter.termSet)}` : sql``;
  const edges = window.edges.map(
    (e) => sql`union all select c.id, c.campaign_id, c.term_set, c.kind, c.send_at, c.deadline_at
      from canaries c where true ${termSet} ${campaign} ${kind('c')}
        ${within(sql`c.send_at`, { start: e.from, end: e.to })}`,
  );
  return sql`(select * from fresh_canaries c where true ${within(sql`c.send_at`, window.whole)}
    ${sql.join(edges, sql` `)}) c`;
}

/**
 * countByAxes for one term set by hour or day and arm, from term_set_hour_rollups and, for what
 * they cannot vouch for, the outcomes (as countByTermSetFromRollups; sealing applied now: like
 * the raw query's `terms=` filter, only final canaries count). Rows in key order.
 */
export async function countTermSetTimelineFromRollups(
  q: Queryable,
  filter: OutcomeFilter,
  axes: readonly AggregationAxis[],
): Promise<GroupedCounts[]> {
  const { from, to, ...held } = filter;
  const { ctes, kind } = await readParts(q, held);
  const termSet = textArray(filter.termSet ?? []);
  const keys = sql.raw(axes.map((_, i) => `k${i}`).join(', '));
  // A window's whole hours come from the hour rows and, for what those cannot vouch for, the
  // outcomes; the parts of an hour at its edges, every canary of them, from the outcomes.
  const window = wholeHours(from, to);
  const found = await rows<Record<string, unknown> & { latency: string }>(
    q,
    sql`with ${ctes},
      rolled as (
        select ${ids(HOUR_COLUMNS.map((col) => `t.${col}`))}
        from term_set_hour_rollups t join prog p on p.campaign_id = t.campaign_id
        where t.term_set = ${termSet} and not exists (select 1 from dirty d
          where d.campaign_id = t.campaign_id and d.term_set = t.term_set and d.kind = t.kind) ${kind('t')}
          ${within(sql`t.bucket`, window.whole)}),
      fresh as (${aggregate(windowCanaries(filter, kind, window), { now: sql`${FINAL_NOW} ${kind('c')}` }, false, true)})
    select ${sql.join(
      axes.map((a, i) => sql`${ROLLUP_AXIS[a]!} as ${sql.identifier(`k${i}`)}`),
      sql`, `,
    )}, ${SUMS}, array_to_string(${sumHistograms('latency')}, ',') as latency
    from (select * from rolled union all select * from fresh) r
    group by ${keys}
    having ${sql.raw(STATUSES.map((s) => `sum(${s})`).join(' + '))} > 0
    order by ${keys}`,
  );
  const histogram = new Float64Array(LATENCY_BUCKETS);
  return found.map((r) => {
    const latency = parseHistogram(r.latency, histogram);
    return {
      k: axes.map((_, i) => (r[`k${i}`] ?? null) as string | null),
      ...statusesOf(r),
      latency_p50_ms: quantileFromHistogram(latency, 0.5),
      latency_p95_ms: quantileFromHistogram(latency, 0.95),
    };
  });
}

/** For tests and the benchmark: the progress rows (RFC 3339, µs). */
export async function termSetProgress(q: Queryable): Promise<{ campaign_id: string; closed: string }[]> {
  return rows(
    q,
    sql`select campaign_id, ${isoMicros(sql`closed_until`)} as closed from term_set_rollup_progress`,
  );
}

/** For the benchmark: how many rows each term-set rollup table holds (all time, hour, quarter, day). */
export async function termSetRollupRows(
  q: Queryable,
): Promise<{ all: number; hourly: number; quarterly: number; daily: number }> {
  const [found] = await rows<{ all: number; hourly: number; quarterly: number; daily: number }>(
    q,
    sql`select (select count(*)::int from term_set_rollups) as "all",
      (select count(*)::int from term_set_hour_rollups) as hourly,
      (select count(*)::int from term_set_quarter_rollups) as quarterly,
      (select count(*)::int from term_set_day_rollups) as daily`,
  );
  return found!;
}
