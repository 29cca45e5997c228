/**
 * Plans (EXPLAIN ANALYZE) of the statements a judging sweep runs after one outcome changed in
 * one scope (bench/judging.ts): marking the changed cells since the campaign's marks, and
 * reading the pairs of the marked cells.
 */
import { type SQL, sql } from 'drizzle-orm';
import { type BacklogCell, changedCellsQuery, pairsOfCellsQuery } from './judging.ts';
import { type Queryable, rows } from './open.ts';

async function plan(q: Queryable, statement: SQL): Promise<string> {
  const out = await rows<{ 'QUERY PLAN': string }>(q, sql`explain (analyze, costs off) ${statement}`);
  return out.map((r) => r['QUERY PLAN']).join('\n');
}

export async function explainOneScope(q: Queryable, campaignId: string, before: Date): Promise<string> {
  const [state] = await rows<{ ob: string; db: string }>(
    q,
    sql`select coalesce(outcomes_before, '-infinity')::text as ob, coalesce(deadlines_before, '-infinity')::text as db
        from judging_state where campaign_id = ${campaignId}::uuid`,
  );
  const [now] = await rows<{ at: string }>(q, sql`select now()::text as at`);
  const marking = await plan(
    q,
    changedCellsQuery(campaignId, { ob: state!.ob, outTo: now!.at, db: state!.db, dlTo: state!.db }),
  );
  const cells = await rows<BacklogCell>(
    q,
    sql`select x.term_set as "termSet", x.platform, x.kind, x.sr as "senderRegion", x.rr as "recipientRegion"
        from (${changedCellsQuery(campaignId, { ob: state!.ob, outTo: now!.at, db: state!.db, dlTo: state!.db })})
          as x(campaign_id, term_set, platform, kind, sr, rr, at)`,
  );
  const pairs = await plan(q, pairsOfCellsQuery(campaignId, cells, before));
  return `-- marking the changed cells (${cells.length} cell(s)):\n${marking}\n\n-- reading their pairs:\n${pairs}`;
}
