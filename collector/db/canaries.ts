/** Canaries: inserting a round's plan, and handing due canaries to their sender's probe. */
import { sql } from 'drizzle-orm';
import { RECEIVED_SINCE_CANARY } from './events.ts';
import { type Queryable, rows } from './open.ts';

export interface DueCanary {
  canaryId: string;
  campaignId: string;
  platform: string;
  sender: string;
  conversation: string;
  text: string;
  nonce: string;
  sendAt: string;
  deadlineAt: string;
}

/**
 * Canaries this probe must send: the sender is one of its accounts, due by `until`, the
 * deadline not passed, and no sent/rejected/failed event reported yet (so a probe that
 * restarted before reporting gets them again). Marks them handed out.
 */
export async function takeDueCanaries(
  q: Queryable,
  probeId: string,
  now: Date,
  until: Date,
  limit = 500,
): Promise<DueCanary[]> {
  return rows<DueCanary>(
    q,
    sql`with due as (
          select c.id from canaries c
          join accounts a on a.id = c.sender_account_id
          where a.probe_id = ${probeId}::uuid
            and c.send_at <= ${until.toISOString()}::timestamptz
            and c.deadline_at > ${now.toISOString()}::timestamptz
            and not exists (select 1 from events e
                            where e.canary_id = c.id and e.type in ('sent', 'rejected', 'failed')
                              and ${RECEIVED_SINCE_CANARY})
          order by c.send_at limit ${limit})
        update canaries c set handed_out_at = coalesce(c.handed_out_at, ${now.toISOString()}::timestamptz)
        from due, accounts a, conversations cv
        where c.id = due.id and a.id = c.sender_account_id and cv.id = c.conversation_id
        returning c.id as "canaryId", c.campaign_id as "campaignId", cv.platform, a.handle as sender,
          cv.ref as conversation, c.text, c.nonce,
          to_char(c.send_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "sendAt",
          to_char(c.deadline_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "deadlineAt"`,
  );
}

export interface CanaryInsert {
  id: string;
  campaignId: string;
  roundId: string | null;
  kind: 'test' | 'control';
  pairId: string;
  termSet: string[];
  carriedTerms: string[];
  text: string;
  nonce: string;
  senderAccountId: string;
  conversationId: string;
  sendAt: Date;
  deadlineAt: Date;
  templateId: string;
  templateVersion: string;
  seed: string;
}

/** Bulk insert (unnest). term_set is text[] per row, passed as a JSON array per row. */
export async function insertCanaries(q: Queryable, list: CanaryInsert[]): Promise<void> {
  if (list.length === 0) return;
  const col = <K extends keyof CanaryInsert>(k: K, f: (v: CanaryInsert[K]) => unknown = (v) => v) =>
    sql.param(list.map((c) => f(c[k])));
  const iso = (d: unknown) => (d as Date).toISOString();
  await q.execute(sql`
    insert into canaries (id, campaign_id, round_id, kind, pair_id, term_set, carried_terms, text, nonce,
      sender_account_id, conversation_id, send_at, deadline_at, template_id, template_version, seed)
    select c.id, c.campaign_id, c.round_id, c.kind, c.pair_id,
      array(select jsonb_array_elements_text(c.term_set::jsonb)),
      array(select jsonb_array_elements_text(c.carried::jsonb)), c.text, c.nonce, c.sender, c.conversation,
      c.send_at, c.deadline_at, c.template_id, c.template_version, c.seed
    from unnest(${col('id')}::uuid[], ${col('campaignId')}::uuid[], ${col('roundId')}::uuid[],
      ${col('kind')}::text[], ${col('pairId')}::uuid[], ${col('termSet', (v) => JSON.stringify(v))}::text[],
      ${col('carriedTerms', (v) => JSON.stringify(v))}::text[],
      ${col('text')}::text[], ${col('nonce')}::text[], ${col('senderAccountId')}::uuid[],
      ${col('conversationId')}::uuid[], ${col('sendAt', iso)}::timestamptz[], ${col('deadlineAt', iso)}::timestamptz[],
      ${col('templateId')}::text[], ${col('templateVersion')}::text[], ${col('seed')}::text[])
      as c(id, campaign_id, round_id, kind, pair_id, term_set, carried, text, nonce, sender, conversation, send_at,
           deadline_at, template_id, template_version, seed)`);
}
