/**
 * Test helpers for the research API (tests only): bulk outcomes made in SQL with
 * generate_series, and findings rows (the analysis writer is not there yet).
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { type Queryable, rows } from './open.ts';
import { textArray } from './research-filters.ts';

export interface BulkOutcomesInput {
  campaignId: string;
  senderAccountId: string;
  conversationId: string;
  recipientAccountIds: string[];
  /** Canaries to make; outcomes = canaries × recipients. */
  canaries: number;
  start: Date;
  /** Send times step by this much. */
  stepMs: number;
  termSet: string[];
  /** Each control shares its pair with the test canary after it (default: every canary a pair of its own). */
  paired?: boolean;
}

/** Canaries (alternating test/control) and their outcomes, every eighth one missing. */
export async function insertBulkOutcomes(q: Queryable, input: BulkOutcomesInput): Promise<number> {
  const start = input.start.toISOString();
  const tag = `bulk-${randomBytes(4).toString('hex')}`;
  await q.execute(sql`
    insert into canaries (id, campaign_id, kind, pair_id, term_set, carried_terms, text, nonce, sender_account_id,
      conversation_id, send_at, deadline_at, template_id, template_version, seed)
    select gen_random_uuid(), ${input.campaignId}::uuid, case when i % 2 = 0 then 'test' else 'control' end,
      ${input.paired ? sql`md5(${tag}::text || ((i + 1) / 2))::uuid` : sql`gen_random_uuid()`}, ${textArray(input.termSet)}, ${textArray(input.termSet)}, 'bulk canary ' || i, ${tag}::text || '-' || i,
      ${input.senderAccountId}::uuid, ${input.conversationId}::uuid,
      ${start}::timestamptz + (i * ${input.stepMs}::bigint) * interval '1 millisecond',
      ${start}::timestamptz + (i * ${input.stepMs}::bigint + 60000) * interval '1 millisecond', 'bulk', 'bulk-1', ${tag}::text
    from generate_series(1, ${input.canaries}) as i`);
  const inserted = await rows<{ n: number }>(
    q,
    sql`with ins as (
          insert into outcomes (canary_id, recipient_account_id, status, deadline_at, latency_ms, received_at,
            received_text, data_format_version)
          select c.id, r.id, case when (hashtext(c.id::text || r.id::text) & 7) = 0 then 'missing' else 'delivered' end,
            c.deadline_at, 400, c.send_at + interval '400 milliseconds', c.text, 1
          from canaries c cross join unnest(${textArray(input.recipientAccountIds)}::uuid[]) as r(id)
          where c.seed = ${tag}::text and c.campaign_id = ${input.campaignId}::uuid
          returning 1)
        select count(*)::int as n from ins`,
  );
  // A bulk load refreshes planner statistics (PGlite has no autovacuum to do it).
  await q.execute(sql`analyze canaries`);
  await q.execute(sql`analyze outcomes`);
  return inserted[0]?.n ?? 0;
}

export interface FindingInput {
  campaignId: string | null;
  termSet: string[];
  scope: { platform?: string; sender_region?: string; recipient_region?: string; conversation_kind?: string };
  windowStart: Date;
  windowEnd: Date;
  verdict: string;
  testTrials: number;
  controlTrials: number;
  testRate: number;
  controlRate: number;
  pValue: number;
  qValue: number;
  ciLow: number;
  ciHigh: number;
  /** Change-point onset and end (monitor mode), when known. */
  since?: Date;
  endedAt?: Date;
  /** findings.independent_probes (decision 012). */
  independentProbes?: unknown;
}

export async function insertFinding(q: Queryable, f: FindingInput): Promise<string> {
  const [row] = await rows<{ id: string }>(
    q,
    sql`insert into findings (campaign_id, term_set, scope, window_start, window_end, verdict, test_trials,
          control_trials, test_rate, control_rate, p_value, q_value, ci_low, ci_high, since, ended_at,
          independent_probes)
        values (${f.campaignId}::uuid, ${textArray(f.termSet)}, ${JSON.stringify(f.scope)}::jsonb,
          ${f.windowStart.toISOString()}::timestamptz, ${f.windowEnd.toISOString()}::timestamptz, ${f.verdict},
          ${f.testTrials}, ${f.controlTrials}, ${f.testRate}, ${f.controlRate}, ${f.pValue}, ${f.qValue},
          ${f.ciLow}, ${f.ciHigh}, ${f.since?.toISOString() ?? null}::timestamptz,
          ${f.endedAt?.toISOString() ?? null}::timestamptz,
          ${f.independentProbes === undefined ? null : JSON.stringify(f.independentProbes)}::jsonb)
        returning id`,
  );
  if (!row) throw new Error('finding insert returned nothing');
  return row.id;
}
