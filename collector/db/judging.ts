/**
 * Incremental judging (decision 028): which term set × scope cells of a campaign have outcomes
 * to judge again, the pairs of just those cells, and the stored judgments the campaign-wide step
 * reads instead of the pairs. collector/findings.ts drives it.
 *
 * Guarantees:
 * - Nothing is missed. A cell's evidence changes only when one of its outcomes is written
 *   (outcomes.updated_at = now(), the writing transaction's start) or when the deadline of one of
 *   its canaries passes the judging time (`before`). `markChanges` puts into judging_backlog the
 *   cells of every outcome written in [outcomes_before, bound) and of every canary whose deadline
 *   is in [deadlines_before, before), and moves both marks to the ends of those ranges, in one
 *   transaction. `bound` is the earliest start of any transaction still open (as the rollups'
 *   watermark, decision 022): an outcome written below it has committed, so a write that commits
 *   late is still above the mark. Half-open ranges: equal timestamps are never split.
 * - Bounded. One run reads at most about `scanRows` changed outcomes and as many canaries (all
 *   rows of one timestamp are taken together: one transaction's writes share it); the rest is
 *   marked by the next run. The cells are judged oldest first, at most `maxKeys` a sweep.
 * - Several collectors. Marking takes the campaign's lock; a sweep deletes only the markings
 *   it read (`mark` is new on every marking) and writes only if the campaign's `version` is still
 *   the one it read before reading anything (`finishJudging`), so two sweeps never both
 *   consume work that only one of them judged.
 */
import { type SQL, sql } from 'drizzle-orm';
import { ONE_RECIPIENT_PER_REGION, type PairedOutcome } from './findings.ts';
import { type Queryable, rows } from './open.ts';
import { sameDeadline } from './partitions.ts';

/** A cell as the canaries spell it: term set (unnormalised) and scope. */
export interface BacklogCell {
  termSet: string[];
  platform: string;
  kind: 'direct' | 'group';
  senderRegion: string;
  recipientRegion: string;
}

export interface BacklogRow extends BacklogCell {
  mark: number;
}

/**
 * The instant before which every outcome write has committed: the earliest start of any
 * transaction still open (but this one), or now. Its own statement: transactions that started
 * before it have ended by the time the next statement takes its snapshot (read committed).
 */
export async function committedBefore(q: Queryable): Promise<string> {
  const [r] = await rows<{ at: string }>(
    q,
    sql`select least(now(), (select min(xact_start) from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid() and xact_start is not null))::text as at`,
  );
  return r!.at;
}

export interface MarkResult {
  /** Cells marked (new or again). */
  marked: number;
  /** Changes left for the next run (the scan stopped at `scanRows`). */
  more: boolean;
  /** The judging options changed (or `before` went back): everything is being judged again. */
  reset: boolean;
}

/**
 * Marks the cells of a campaign changed since the last run (see the guarantees above). Call in
 * a transaction holding the campaign's lock. `options`: the judging options as text; when they
 * differ from the stored ones, or `before` is earlier than the last run's, the marks start over
 * and the stored judgments are dropped (they were made under other rules or later times).
 */
export async function markChanges(
  tx: Queryable,
  campaignId: string,
  options: string,
  before: Date,
  scanRows: number,
): Promise<MarkResult> {
  const [state] = await rows<{ ob: string | null; db: string | null; options: string; back: boolean }>(
    tx,
    sql`select outcomes_before::text as ob, deadlines_before::text as db, options,
          coalesce(deadlines_before > ${before.toISOString()}::timestamptz, false) as back
        from judging_state where campaign_id = ${campaignId}::uuid for update`,
  );
  const reset = !state || state.options !== options || state.back;
  if (reset) {
    await tx.execute(sql`insert into judging_state (campaign_id, outcomes_before, deadlines_before, options)
      values (${campaignId}::uuid, null, null, ${options})
      on conflict (campaign_id) do update set outcomes_before = null, deadlines_before = null,
        options = excluded.options, version = judging_state.version + 1, updated_at = now()`);
    if (state) await tx.execute(sql`delete from judgments where campaign_id = ${campaignId}::uuid`);
  }
  const ob = reset ? '-infinity' : (state.ob ?? '-infinity');
  const db = reset ? '-infinity' : (state.db ?? '-infinity');
  const bound = await committedBefore(tx);
  const iso = before.toISOString();
  // The end of each scan: after about scanRows rows, but never inside one timestamp.
  const [ends] = await rows<{ outTo: string; dlTo: string }>(
    tx,
    sql`with oc as (select updated_at from outcomes where updated_at >= ${ob}::timestamptz
                      and updated_at < ${bound}::timestamptz order by updated_at offset ${scanRows} limit 1),
             dc as (select deadline_at from canaries where campaign_id = ${campaignId}::uuid
                      and deadline_at >= ${db}::timestamptz and deadline_at < ${iso}::timestamptz
                    order by deadline_at offset ${scanRows} limit 1)
        select (case when not exists (select 1 from oc) then ${bound}::timestamptz
                     when (select updated_at from oc) > ${ob}::timestamptz then (select updated_at from oc)
                     else coalesce((select min(updated_at) from outcomes where updated_at > ${ob}::timestamptz
                                      and updated_at < ${bound}::timestamptz), ${bound}::timestamptz) end)::text as "outTo",
               (case when not exists (select 1 from dc) then ${iso}::timestamptz
                     when (select deadline_at from dc) > ${db}::timestamptz then (select deadline_at from dc)
                     else coalesce((select min(deadline_at) from canaries where campaign_id = ${campaignId}::uuid
                                      and deadline_at > ${db}::timestamptz and deadline_at < ${iso}::timestamptz),
                                   ${iso}::timestamptz) end)::text as "dlTo"`,
  );
  const { outTo, dlTo } = ends!;
  const [marked] = await rows<{ n: number }>(
    tx,
    sql`with m as (insert into judging_backlog (campaign_id, term_set, platform, conversation_kind, sender_region,
                recipient_region, first_change)
              ${changedCellsQuery(campaignId, { ob, outTo, db, dlTo })}
              on conflict on constraint judging_backlog_pk do update set
                first_change = least(judging_backlog.first_change, excluded.first_change), mark = excluded.mark
              returning 1)
        select count(*)::int as n from m`,
  );
  await tx.execute(sql`update judging_state set outcomes_before = ${outTo}::timestamptz,
      deadlines_before = ${dlTo}::timestamptz, updated_at = now()
    where campaign_id = ${campaignId}::uuid`);
  const [more] = await rows<{ more: boolean }>(
    tx,
    sql`select (${outTo}::timestamptz < ${bound}::timestamptz or ${dlTo}::timestamptz < ${iso}::timestamptz) as more`,
  );
  return { marked: marked!.n, more: more!.more, reset };
}

/**
 * The cells of outcomes written in [ob, outTo) and of the campaign's canaries whose deadline is
 * in [db, dlTo), with their earliest change (timestamps as text, exact to the microsecond).
 */
export function changedCellsQuery(
  campaignId: string,
  r: { ob: string; outTo: string; db: string; dlTo: string },
): SQL {
  return sql`select ${campaignId}::uuid, x.term_set, cv.platform, cv.kind, sa.region, ra.region, min(ch.at)
    from (select o.canary_id, o.recipient_account_id, o.updated_at as at from outcomes o
            where o.updated_at >= ${r.ob}::timestamptz and o.updated_at < ${r.outTo}::timestamptz
          union all
          select o.canary_id, o.recipient_account_id, c.deadline_at from canaries c
            join outcomes o on o.canary_id = c.id and ${sameDeadline('o', 'c')}
              -- the same bounds on the outcomes' own deadline: only those months are read
              and o.deadline_at >= ${r.db}::timestamptz and o.deadline_at < ${r.dlTo}::timestamptz
            where c.campaign_id = ${campaignId}::uuid and c.deadline_at >= ${r.db}::timestamptz
              and c.deadline_at < ${r.dlTo}::timestamptz) ch
    join canaries x on x.id = ch.canary_id and x.campaign_id = ${campaignId}::uuid
    join conversations cv on cv.id = x.conversation_id
    join accounts sa on sa.id = x.sender_account_id
    join accounts ra on ra.id = ch.recipient_account_id
    group by x.term_set, cv.platform, cv.kind, sa.region, ra.region`;
}

/** Marks cells to judge again now (a screen's clearance was written over their findings). */
export async function markForJudging(
  q: Queryable,
  campaignId: string,
  cells: readonly BacklogCell[],
): Promise<void> {
  if (cells.length === 0) return;
  const col = (f: (c: BacklogCell) => unknown) => sql.param(cells.map(f));
  await q.execute(sql`insert into judging_backlog (campaign_id, term_set, platform, conversation_kind,
      sender_region, recipient_region, first_change)
    select distinct ${campaignId}::uuid, array(select jsonb_array_elements_text(x.ts::jsonb)), x.platform, x.kind,
      x.sr, x.rr, now()
    from unnest(${col((c) => JSON.stringify(c.termSet))}::text[], ${col((c) => c.platform)}::text[],
      ${col((c) => c.kind)}::text[], ${col((c) => c.senderRegion)}::text[], ${col((c) => c.recipientRegion)}::text[])
      as x(ts, platform, kind, sr, rr)
    on conflict on constraint judging_backlog_pk do update set mark = excluded.mark`);
}

/** The campaign's judging version (0 before its first run). */
export async function judgingVersion(q: Queryable, campaignId: string): Promise<number> {
  const [r] = await rows<{ version: number }>(
    q,
    sql`select version::float8 as version from judging_state where campaign_id = ${campaignId}::uuid`,
  );
  return r?.version ?? 0;
}

/** At most `limit` marked cells of the campaign, oldest change first. */
export async function oldestMarked(q: Queryable, campaignId: string, limit: number): Promise<BacklogRow[]> {
  return rows<BacklogRow>(
    q,
    sql`select term_set as "termSet", platform, conversation_kind as kind, sender_region as "senderRegion",
          recipient_region as "recipientRegion", mark::float8 as mark
        from judging_backlog where campaign_id = ${campaignId}::uuid
        order by first_change, mark limit ${limit}`,
  );
}

/** Marked cells of the campaign (for metrics and tests). */
export async function markedCount(q: Queryable, campaignId: string): Promise<number> {
  const [r] = await rows<{ n: number }>(
    q,
    sql`select count(*)::int as n from judging_backlog where campaign_id = ${campaignId}::uuid`,
  );
  return r?.n ?? 0;
}

/**
 * Paired outcomes (as `pairedOutcomes`, one per message and recipient region) of the listed cells only: the test canaries of each
 * spelling of a term set (index on campaign, term set, kind), restricted to the cell's scope.
 */
export async function pairedOutcomesOfCells(
  q: Queryable,
  campaignId: string,
  cells: readonly BacklogCell[],
  before: Date,
): Promise<PairedOutcome[]> {
  if (cells.length === 0) return [];
  return rows<PairedOutcome>(q, pairsOfCellsQuery(campaignId, cells, before));
}

/** The select of `pairedOutcomesOfCells`. */
export function pairsOfCellsQuery(campaignId: string, cells: readonly BacklogCell[], before: Date): SQL {
  const at = before.toISOString();
  const col = (f: (c: BacklogCell) => unknown) => sql.param(cells.map(f));
  return sql`with k as (select distinct array(select jsonb_array_elements_text(x.ts::jsonb)) as term_set, x.platform,
                     x.kind, x.sr, x.rr
                   from unnest(${col((c) => JSON.stringify(c.termSet))}::text[], ${col((c) => c.platform)}::text[],
                     ${col((c) => c.kind)}::text[], ${col((c) => c.senderRegion)}::text[],
                     ${col((c) => c.recipientRegion)}::text[]) as x(ts, platform, kind, sr, rr))
        select * from (select ${ONE_RECIPIENT_PER_REGION.distinct} t.term_set as "termSet", cv.platform, cv.kind, sa.region as "senderRegion",
          ra.region as "recipientRegion", ot.status as "testStatus", ot.latency_ms as "testLatencyMs",
          oc.status as "controlStatus", oc.latency_ms as "controlLatencyMs",
          (extract(epoch from coalesce(r.round_at, t.send_at)) * 1000)::float8 as "windowMs",
          (extract(epoch from t.send_at) * 1000)::float8 as "sendMs",
          sa.probe_id as "senderProbeId", sp.asn::float8 as "senderAsn",
          ra.probe_id as "recipientProbeId", rp.asn::float8 as "recipientAsn"
        from k
        join canaries t on t.campaign_id = ${campaignId}::uuid and t.term_set = k.term_set and t.kind = 'test'
        join conversations cv on cv.id = t.conversation_id and cv.platform = k.platform and cv.kind = k.kind
        join accounts sa on sa.id = t.sender_account_id and sa.region = k.sr
        join canaries c on c.pair_id = t.pair_id and c.kind = 'control'
        join outcomes ot on ot.canary_id = t.id and ${sameDeadline('ot', 't')}
        join accounts ra on ra.id = ot.recipient_account_id and ra.region = k.rr
        join outcomes oc on oc.canary_id = c.id and ${sameDeadline('oc', 'c')}
          and oc.recipient_account_id = ot.recipient_account_id
        join probes sp on sp.id = sa.probe_id
        join probes rp on rp.id = ra.probe_id
        left join rounds r on r.id = t.round_id
        where t.deadline_at < ${at}::timestamptz and c.deadline_at < ${at}::timestamptz
          and ot.status not in ('pending', 'failed') and oc.status not in ('pending', 'failed')
          and not exists (select 1 from followup_steps s where s.pair_ids @> array[t.pair_id])
        ${ONE_RECIPIENT_PER_REGION.order}) e
        order by "windowMs"`;
}

export interface StoredJudgment {
  key: string;
  /** The spellings of the term set its canaries carry. */
  termSets: string[][];
  /** JSON text (collector/findings.ts `Judged`). */
  judged: string;
  /** JSON text of the finding last written for it. */
  written: string | null;
}

/** Every stored judgment of the campaign (one per term set × scope with paired evidence). */
export async function storedJudgments(q: Queryable, campaignId: string): Promise<StoredJudgment[]> {
  return rows<StoredJudgment>(
    q,
    sql`select key, term_sets as "termSets", judged, written from judgments
        where campaign_id = ${campaignId}::uuid`,
  );
}

export interface JudgmentWrite {
  key: string;
  termSets: string[][];
  judged: string;
  written: string | null;
}

/**
 * Writes the campaign's judging step if its version is still `version` (else false, nothing
 * written): judgments saved (and those of `gone` keys deleted), `written` updated, the markings
 * it judged deleted, and the version moved on. Call in a transaction holding the campaign's lock.
 */
export async function finishJudging(
  tx: Queryable,
  campaignId: string,
  version: number,
  w: {
    judgments: JudgmentWrite[];
    gone: string[];
    written: { key: string; written: string }[];
    marks: number[];
  },
): Promise<boolean> {
  const [v] = await rows<{ ok: boolean }>(
    tx,
    sql`update judging_state set version = version + 1, updated_at = now()
        where campaign_id = ${campaignId}::uuid and version = ${version} returning true as ok`,
  );
  if (!v?.ok) return false;
  if (w.judgments.length > 0) {
    const col = (f: (j: JudgmentWrite) => unknown) => sql.param(w.judgments.map(f));
    await tx.execute(sql`insert into judgments (campaign_id, key, term_sets, judged, written, updated_at)
      select ${campaignId}::uuid, j.key, j.term_sets::jsonb, j.judged, j.written, now()
      from unnest(${col((j) => j.key)}::text[], ${col((j) => JSON.stringify(j.termSets))}::text[],
        ${col((j) => j.judged)}::text[], ${col((j) => j.written)}::text[]) as j(key, term_sets, judged, written)
      on conflict (campaign_id, key) do update set term_sets = excluded.term_sets, judged = excluded.judged,
        written = coalesce(excluded.written, judgments.written), updated_at = now()`);
  }
  if (w.written.length > 0) {
    await tx.execute(sql`update judgments j set written = x.written
      from unnest(${sql.param(w.written.map((x) => x.key))}::text[], ${sql.param(w.written.map((x) => x.written))}::text[])
        as x(key, written)
      where j.campaign_id = ${campaignId}::uuid and j.key = x.key`);
  }
  if (w.gone.length > 0) {
    await tx.execute(sql`delete from judgments where campaign_id = ${campaignId}::uuid
      and key = any(${sql.param(w.gone)}::text[])`);
  }
  if (w.marks.length > 0) {
    await tx.execute(sql`delete from judging_backlog where campaign_id = ${campaignId}::uuid
      and mark = any(${sql.param(w.marks)}::bigint[])`);
  }
  return true;
}
