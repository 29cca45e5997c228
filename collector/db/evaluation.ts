/**
 * The queries behind the `silentdrop evaluate` report (cli/evaluate/report.ts): which
 * scopes a campaign's conversations reach, what the run cost, and whether follow-ups run.
 */
import { sql } from 'drizzle-orm';
import { RECEIVED_SINCE_CANARY } from './events.ts';
import type { FindingScope, StoredFinding } from './findings.ts';
import { type Queryable, rows } from './open.ts';

/** Every (platform, kind, sender region, recipient region) the campaign's conversations reach. */
export async function possibleScopes(q: Queryable, campaignId: string): Promise<FindingScope[]> {
  const found = await rows<FindingScope>(
    q,
    sql`select distinct cv.platform, cv.kind as conversation_kind, s.region as sender_region, r.region as recipient_region
        from campaigns c
        join conversations cv on (c.conversation_selection->>'platform' is null or cv.platform = c.conversation_selection->>'platform')
          and (c.conversation_selection->'refs' is null
               or cv.ref in (select jsonb_array_elements_text(c.conversation_selection->'refs')))
        join conversation_members ms on ms.conversation_id = cv.id
        join accounts s on s.platform = cv.platform and s.handle = ms.handle
        join conversation_members mr on mr.conversation_id = cv.id and mr.handle <> ms.handle
        join accounts r on r.platform = cv.platform and r.handle = mr.handle
        where c.id = ${campaignId}::uuid
        order by 1, 2, 3, 4`,
  );
  return found;
}

/** What the report reads of a stored finding (collector/db/findings.ts's `StoredFinding`, in part). */
export type ReportedFinding = Pick<
  StoredFinding,
  | 'key'
  | 'verdict'
  | 'testTrials'
  | 'controlTrials'
  | 'testRate'
  | 'controlRate'
  | 'pValue'
  | 'qValue'
  | 'ciLow'
  | 'ciHigh'
  | 'settled'
  | 'minimal'
>;

/**
 * The campaign's findings, the columns the report shows. The report is read every second during
 * a run: all of `findingsOfCampaign` (detail, corroboration, scope and term set as JSON) took
 * 1.5-2 s for 14,000 findings, this a small part of it.
 */
export async function reportedFindings(q: Queryable, campaignId: string): Promise<ReportedFinding[]> {
  return rows<ReportedFinding>(
    q,
    sql`select key, verdict, test_trials as "testTrials", control_trials as "controlTrials",
          test_rate as "testRate", control_rate as "controlRate", p_value as "pValue",
          q_value as "qValue", ci_low as "ciLow", ci_high as "ciHigh", settled, minimal
        from findings where campaign_id = ${campaignId}::uuid and key is not null`,
  );
}

/** Canaries of the campaign whose sender sent them or was refused (a notice): what it cost. */
export async function messagesSent(q: Queryable, campaignId: string): Promise<number> {
  const [row] = await rows<{ n: number }>(
    q,
    sql`select count(*)::int as n from canaries c
        where c.campaign_id = ${campaignId}::uuid
          and exists (select 1 from events e where e.canary_id = c.id and e.type in ('sent', 'rejected')
                        and ${RECEIVED_SINCE_CANARY})`,
  );
  return row?.n ?? 0;
}

/** Follow-ups of the campaign still running. */
export async function runningFollowups(q: Queryable, campaignId: string): Promise<number> {
  const [row] = await rows<{ n: number }>(
    q,
    sql`select count(*)::int as n from followups where campaign_id = ${campaignId}::uuid and status = 'running'`,
  );
  return row?.n ?? 0;
}

/** Scopes (`kind|sender|recipient`) whose screen is still running, with the packs it sent so far. */
export async function runningScreens(q: Queryable, campaignId: string): Promise<Map<string, number>> {
  const found = await rows<{ kind: string; sender: string; recipient: string; packs: number }>(
    q,
    sql`select f.scope->>'conversation_kind' as kind, f.scope->>'sender_region' as sender,
          f.scope->>'recipient_region' as recipient,
          coalesce((select sum(jsonb_array_length(s.messages))::int from followup_steps s where s.followup_id = f.id), 0) as packs
        from followups f
        where f.campaign_id = ${campaignId}::uuid and f.procedure = 'screen' and f.status = 'running'`,
  );
  return new Map(found.map((r) => [`${r.kind}|${r.sender}|${r.recipient}`, r.packs]));
}
