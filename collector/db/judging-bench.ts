/**
 * A large campaign for bench/judging.ts, seeded in SQL: `termSets` term sets, each sent in every
 * round as a test/control pair from a US account to a group (recipients in CN, AU, RU) and to a
 * direct chat (CN): four scopes per set. Outcomes are final; 1 in 8 test outcomes `missing` for
 * the first tenth of the sets in the group (a suppression to find), background loss 1 in 64.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { createCampaign, createTermList } from './campaigns.ts';
import { type Queryable, rows } from './open.ts';

export interface JudgingBenchCampaign {
  id: string;
  termSets: string[][];
  /** Changes the outcome of one test canary (one scope): the status flips, updated_at moves. */
  touchOneScope(): Promise<void>;
}

export async function seedJudgingCampaign(
  q: Queryable,
  o: { termSets: number; rounds: number; start: Date; stepMs: number },
): Promise<JudgingBenchCampaign> {
  const tag = randomBytes(4).toString('hex');
  const termSets = Array.from({ length: o.termSets }, (_, i) => [`term${i}-${tag}`]);
  const [probe] = await rows<{ id: string }>(
    q,
    sql`insert into probes (public_key, country, asn, software_version)
      values (${`bench-${tag}`}, 'US', 64500, 'bench') returning id`,
  );
  const account = async (region: string) => {
    const [a] = await rows<{ id: string }>(
      q,
      sql`insert into accounts (probe_id, platform, handle, region, adapter_name, adapter_version, state)
        values (${probe!.id}::uuid, 'testbed', ${`${region}-${tag}`}, ${region}, 'testbed', '1', 'active') returning id`,
    );
    return a!.id;
  };
  const us = await account('US');
  const recipients = { CN: await account('CN'), AU: await account('AU'), RU: await account('RU') };
  const conversation = async (kind: 'group' | 'direct') => {
    const [c] = await rows<{ id: string }>(
      q,
      sql`insert into conversations (platform, ref, kind) values ('testbed', ${`${kind}-${tag}`}, ${kind}) returning id`,
    );
    return c!.id;
  };
  const group = await conversation('group');
  const direct = await conversation('direct');
  const list = await createTermList(q, { name: `bench-${tag}`, termSets });
  const campaign = await createCampaign(q, {
    name: `bench-judging-${tag}`,
    mode: 'monitor',
    termListIds: list ? [list.id] : [],
    conversations: { platform: 'testbed' },
    cadenceCron: '* * * * *',
    deadlineSeconds: 60,
    termSetsPerRound: o.termSets,
    seed: tag,
    startsAt: o.start,
    endsAt: null,
  });
  const suppressed = Math.max(1, Math.floor(o.termSets / 10));
  await q.execute(sql`
    insert into canaries (id, campaign_id, kind, pair_id, term_set, carried_terms, text, nonce, sender_account_id,
      conversation_id, send_at, deadline_at, template_id, template_version, seed)
    select gen_random_uuid(), ${campaign.id}::uuid, arm, md5(${tag}::text || r || '-' || s || '-' || conv)::uuid,
      array[${`term`}::text || s || '-' || ${tag}::text], array[${`term`}::text || s || '-' || ${tag}::text],
      'bench ' || r || ' ' || s || ' ' || arm, ${tag}::text || '-' || r || '-' || s || '-' || conv || '-' || arm,
      ${us}::uuid, case when conv = 0 then ${group}::uuid else ${direct}::uuid end,
      ${o.start.toISOString()}::timestamptz + (r * ${o.stepMs}::bigint) * interval '1 millisecond',
      ${o.start.toISOString()}::timestamptz + (r * ${o.stepMs}::bigint + 60000) * interval '1 millisecond',
      'bench', '1', ${tag}::text
    from generate_series(0, ${o.rounds - 1}) as r, generate_series(0, ${o.termSets - 1}) as s,
      generate_series(0, 1) as conv, unnest(array['test', 'control']) as arm`);
  await q.execute(sql`
    insert into outcomes (canary_id, recipient_account_id, status, deadline_at, latency_ms, data_format_version)
    select c.id, r.id,
      case when (hashtext(c.id::text || r.id::text) & 63) = 0 then 'missing'
           when c.kind = 'test' and c.conversation_id = ${group}::uuid
             and substring(c.term_set[1] from '^term([0-9]+)-')::int < ${suppressed}
             and (hashtext(c.id::text) & 7) <> 0 then 'missing'
           else 'delivered' end,
      c.deadline_at, 400, 1
    from canaries c
    join lateral (select unnest(case when c.conversation_id = ${group}::uuid
                    then array[${recipients.CN}::uuid, ${recipients.AU}::uuid, ${recipients.RU}::uuid]
                    else array[${recipients.CN}::uuid] end) as id) r on true
    where c.campaign_id = ${campaign.id}::uuid`);
  await q.execute(sql`analyze canaries`);
  await q.execute(sql`analyze outcomes`);
  let flips = 0;
  return {
    id: campaign.id,
    termSets,
    async touchOneScope() {
      flips++;
      await q.execute(sql`update outcomes o set status = case when o.status = 'delivered' then 'missing' else 'delivered' end,
          updated_at = now()
        from (select c.id from canaries c where c.campaign_id = ${campaign.id}::uuid and c.kind = 'test'
                and c.term_set = array[${termSets[termSets.length - 1]![0]!}]::text[] and c.conversation_id = ${direct}::uuid
              order by c.send_at offset ${flips} limit 1) t
        where o.canary_id = t.id`);
    },
  };
}
