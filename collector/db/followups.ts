/**
 * Storage for follow-ups (collector/followups.ts decides what they send): isolation and screen
 * runs (`followups`), the log of their steps (`followup_steps`: messages, the pair ids sent for
 * them, and their results once final), the term sets isolation derived (`derived_term_sets`),
 * and what the steps read back from canaries and outcomes.
 */
import { sql } from 'drizzle-orm';
import type { CampaignMode, ConversationSelection } from '../../protocol/index.ts';
import type { MessageRequest, ProbeResult } from '../analysis/index.ts';
import { canonicalTermSet, type FollowupKey, type FollowupProcedure, termSetKey } from '../keys.ts';
import type { FindingScope } from './findings.ts';
import { type Queryable, rows } from './open.ts';
import { sameDeadline } from './partitions.ts';

/** What a follow-up step needs of its campaign. */
export interface FollowupCampaign {
  id: string;
  mode: CampaignMode;
  deadlineSeconds: number;
  seed: string;
  termListIds: string[];
  conversationSelection: ConversationSelection;
}

export async function followupCampaign(
  q: Queryable,
  campaignId: string,
): Promise<FollowupCampaign | undefined> {
  const [found] = await rows<FollowupCampaign>(
    q,
    sql`select id, mode, deadline_seconds as "deadlineSeconds", seed, term_list_ids as "termListIds",
          conversation_selection as "conversationSelection" from campaigns where id = ${campaignId}::uuid`,
  );
  return found;
}

/** A running follow-up: an isolation of one term set, or a screen of the listed sets, in one scope. */
export interface FollowupRun {
  id: string;
  procedure: FollowupProcedure;
  input: string[] | string[][];
  scope: FindingScope;
}

/**
 * Records a follow-up once per (campaign, key): running, or already `done` with its result (an
 * isolation that needs no message). A second insert under the same key changes nothing.
 */
export async function insertFollowup(
  q: Queryable,
  f: {
    campaignId: string;
    procedure: FollowupProcedure;
    input: string[] | string[][];
    key: FollowupKey;
    scope: FindingScope;
    done?: unknown;
  },
): Promise<void> {
  const status = f.done === undefined ? 'running' : 'done';
  const result = f.done === undefined ? null : JSON.stringify(f.done);
  await q.execute(sql`insert into followups (campaign_id, procedure, input, key, scope, status, result)
    values (${f.campaignId}::uuid, ${f.procedure}, ${JSON.stringify(f.input)}::jsonb, ${f.key},
            ${JSON.stringify(f.scope)}::jsonb, ${status}, ${result}::jsonb)
    on conflict (campaign_id, key) do nothing`);
}

/** The campaign's running follow-ups, oldest first. */
export async function runningFollowupRuns(q: Queryable, campaignId: string): Promise<FollowupRun[]> {
  return rows<FollowupRun>(
    q,
    sql`select id, procedure, input, scope from followups
        where campaign_id = ${campaignId}::uuid and status = 'running' order by created_at, key`,
  );
}

/** Whether the follow-up is still running (another collector may have finished it since). */
export async function followupRunning(q: Queryable, followupId: string): Promise<boolean> {
  const found = await rows<{ id: string }>(
    q,
    sql`select id from followups where id = ${followupId}::uuid and status = 'running'`,
  );
  return found.length > 0;
}

/** Marks a follow-up done with the stepper's result. */
export async function finishFollowup(q: Queryable, followupId: string, result: unknown): Promise<void> {
  await q.execute(sql`update followups set status = 'done', result = ${JSON.stringify(result)}::jsonb,
    updated_at = now() where id = ${followupId}::uuid`);
}

/** Marks a follow-up failed, with the reason in its result. */
export async function failFollowup(q: Queryable, followupId: string, error: string): Promise<void> {
  await q.execute(sql`update followups set status = 'failed', result = ${JSON.stringify({ error })}::jsonb,
    updated_at = now() where id = ${followupId}::uuid`);
}

/**
 * One stored step of a follow-up: the messages asked for, the pairs of its latest sending (one a
 * message, in order), how often it was sent again (`resends`), and its results once final.
 *
 * The row's `pair_ids` holds the pairs of every sending, oldest first, so judging leaves all of
 * them out; the last `messages.length` are the ones read (`resendFollowupStep`).
 */
export interface FollowupStep {
  step: number;
  messages: MessageRequest[];
  pairIds: string[];
  resends: number;
  results: ProbeResult[] | null;
}

export async function followupSteps(q: Queryable, followupId: string): Promise<FollowupStep[]> {
  return rows<FollowupStep>(
    q,
    sql`select step, messages, results,
          pair_ids[cardinality(pair_ids) - jsonb_array_length(messages) + 1 :] as "pairIds",
          cardinality(pair_ids) / greatest(jsonb_array_length(messages), 1) - 1 as resends
        from followup_steps
        where followup_id = ${followupId}::uuid order by step`,
  );
}

/** A step without results of one of the follow-ups `openFollowupSteps` was asked about. */
export interface OpenFollowupStep {
  followupId: string;
  step: number;
  pairIds: string[];
  resends: number;
}

/**
 * The steps without results of the follow-ups, in one query (`followupSteps` without messages or
 * results): the sweep reads these to skip the runs with nothing to read or send yet.
 */
export async function openFollowupSteps(
  q: Queryable,
  followupIds: readonly string[],
): Promise<OpenFollowupStep[]> {
  if (followupIds.length === 0) return [];
  return rows<OpenFollowupStep>(
    q,
    sql`select followup_id as "followupId", step,
          pair_ids[cardinality(pair_ids) - jsonb_array_length(messages) + 1 :] as "pairIds",
          cardinality(pair_ids) / greatest(jsonb_array_length(messages), 1) - 1 as resends
        from followup_steps
        where followup_id = any(${sql.param(followupIds)}::uuid[]) and results is null
        order by followup_id, step`,
  );
}

/**
 * Records that a step's messages were sent again, as `pairIds` (one a message): they are appended
 * to the step's pairs, and its results are read from them. Only while the step has no results.
 */
export async function resendFollowupStep(
  q: Queryable,
  followupId: string,
  step: number,
  pairIds: readonly string[],
): Promise<void> {
  await q.execute(sql`update followup_steps set pair_ids = pair_ids || ${sql.param(pairIds)}::uuid[]
    where followup_id = ${followupId}::uuid and step = ${step} and results is null`);
}

export async function insertFollowupStep(
  q: Queryable,
  followupId: string,
  step: number,
  messages: readonly MessageRequest[],
  pairIds: readonly string[],
): Promise<void> {
  await q.execute(sql`insert into followup_steps (followup_id, step, messages, pair_ids)
    values (${followupId}::uuid, ${step}, ${JSON.stringify(messages)}::jsonb, ${sql.param(pairIds)}::uuid[])
    on conflict do nothing`);
}

export async function saveStepResults(
  q: Queryable,
  followupId: string,
  step: number,
  results: readonly ProbeResult[],
): Promise<void> {
  await q.execute(sql`update followup_steps set results = ${JSON.stringify(results)}::jsonb
    where followup_id = ${followupId}::uuid and step = ${step}`);
}

/** Adds a term set isolation or a screen derived to the campaign's tested sets (once per set). */
export async function insertDerivedTermSet(
  q: Queryable,
  campaignId: string,
  termSet: readonly string[],
  followupId: string,
): Promise<void> {
  await q.execute(sql`insert into derived_term_sets (campaign_id, key, term_set, followup_id)
    values (${campaignId}::uuid, ${termSetKey(termSet)}, ${sql.param(canonicalTermSet(termSet))}::text[],
            ${followupId}::uuid)
    on conflict do nothing`);
}

/** Per pair, the send time (epoch ms) of its test canary. */
export async function testSendTimes(
  q: Queryable,
  pairIds: readonly (string | null)[],
): Promise<Map<string, number>> {
  const found = await rows<{ pairId: string; sendMs: number }>(
    q,
    sql`select pair_id as "pairId", (extract(epoch from send_at) * 1000)::float8 as "sendMs"
        from canaries where kind = 'test' and pair_id = any(${sql.param(pairIds)}::uuid[])`,
  );
  return new Map(found.map((t) => [t.pairId, t.sendMs]));
}

/** A follow-up canary with its outcome at one recipient of the scope (see `pairOutcomesAt`). */
export interface PairOutcome {
  pairId: string;
  canaryId: string;
  senderId: string;
  kind: 'test' | 'control';
  status: string | null;
  deadlineMs: number;
  handedOut: boolean;
}

/**
 * The canaries of the pairs with their outcomes at recipients of `recipientRegion` (status null
 * where a canary has no such outcome yet), their deadlines (epoch ms), and whether a probe took
 * them (`handedOut`).
 */
export async function pairOutcomesAt(
  q: Queryable,
  pairIds: readonly string[],
  recipientRegion: string,
): Promise<PairOutcome[]> {
  return rows(
    q,
    sql`select c.pair_id as "pairId", c.id as "canaryId", c.sender_account_id as "senderId", c.kind, o.status,
          (extract(epoch from c.deadline_at) * 1000)::float8 as "deadlineMs",
          c.handed_out_at is not null as "handedOut"
        from canaries c
        left join outcomes o on o.canary_id = c.id and ${sameDeadline('o', 'c')}
          and exists (select 1 from accounts a where a.id = o.recipient_account_id and a.region = ${recipientRegion})
        where c.pair_id = any(${sql.param(pairIds)}::uuid[])`,
  );
}
