/**
 * What bench/query.ts needs of the database beyond the collector's own reads: synthetic
 * outcomes seeded in SQL (generate_series, so 50M rows take minutes, not hours), the
 * queries as they were before rollups and the keyset bound (the "naive" side of each
 * ratio), and COPY … TO STDOUT of the rows an export returns. Benchmark support only; the
 * collector never calls it.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { type Queryable, rows } from './open.ts';
import { ensurePartitions, monthStart } from './partitions.ts';
import { exportSelectSql } from './research-export.ts';
import {
  isoMicros,
  isoMillis,
  OUTCOME_FROM,
  type OutcomeFilter,
  PUBLIC_TERM_SET,
  unsealed,
} from './research-filters.ts';
import type { OutcomeKey, ResearchOutcomeRow } from './research-outcomes.ts';

/** Synthetic world: 4 regions × 3 accounts (one probe per region), 20 conversations, 4 campaigns. */
const REGIONS = ['US', 'CN', 'TW', 'AU'];
export const SEED_CAMPAIGNS = 4;

export interface SeedInput {
  /** Outcomes to make (about: group canaries have 4 recipients, direct ones 1). */
  outcomes: number;
  /** Send times spread evenly over this many days, ending a day before now. */
  days: number;
}

/**
 * Seeds campaigns, probes, accounts, conversations, canaries and outcomes. Statuses: 80 %
 * delivered, 6 % delayed, 8 % missing, 2 % altered, 2 % rejected, 1 % failed, 1 % pending;
 * latencies log-uniform 20 ms – 60 s (delayed: 1–30 min). Returns the outcomes made.
 */
export async function seedOutcomes(q: Queryable, input: SeedInput): Promise<number> {
  await q.execute(sql`insert into probes (id, public_key, country, asn, software_version)
    select md5('probe' || r)::uuid, 'bench-key-' || r, r, 64500, 'bench' from unnest(${sql.param(REGIONS)}::text[]) r`);
  await q.execute(sql`insert into accounts (id, probe_id, platform, handle, region, adapter_name, adapter_version, state)
    select md5('acct' || r || n)::uuid, md5('probe' || r)::uuid, 'testbed', 'bench-' || r || n, r, 'testbed', '1', 'active'
    from unnest(${sql.param(REGIONS)}::text[]) r, generate_series(1, 3) n`);
  await q.execute(sql`insert into conversations (id, platform, ref, kind)
    select md5('conv' || n)::uuid, case when n % 5 = 0 then 'xmpp' else 'testbed' end, 'bench-' || n,
      case when n % 5 in (1, 2) then 'direct' else 'group' end
    from generate_series(0, 19) n`);
  await q.execute(sql`insert into campaigns (id, name, mode, term_list_ids, conversation_selection, cadence_cron,
      deadline_seconds, term_sets_per_round, seed)
    select md5('camp' || n)::uuid, 'bench ' || n, 'monitor', '{}', '{}'::jsonb, '*/5 * * * *', 60, 100, 'bench'
    from generate_series(0, ${SEED_CAMPAIGNS - 1}) n`);
  // 12 of 20 conversations are groups (4 recipients), 8 direct (1): 2.8 outcomes per canary on average.
  const canaries = Math.ceil(input.outcomes / 2.8);
  const spanMs = input.days * 86_400_000;
  // Every month the deadlines fall in has its partition, as a collector running all along
  // would have made them (decision 040), so none of the seed lands in the default partition.
  const [clock] = await rows<{ ms: number }>(q, sql`select (extract(epoch from now()) * 1000)::float8 as ms`);
  const first = monthStart(new Date(clock!.ms - 86_400_000 - spanMs));
  for (let m = first; m.getTime() <= clock!.ms; m = monthStart(m, 1))
    await ensurePartitions(q, 'outcomes', m);
  const chunk = 1_000_000;
  for (let lo = 0; lo < canaries; lo += chunk) {
    const hi = Math.min(canaries, lo + chunk) - 1;
    await q.execute(sql`with c as (
        insert into canaries (id, campaign_id, kind, pair_id, term_set, carried_terms, text, nonce,
          sender_account_id, conversation_id, send_at, deadline_at, template_id, template_version, seed)
        select gen_random_uuid(), md5('camp' || (i % ${SEED_CAMPAIGNS}))::uuid,
          case when i % 2 = 0 then 'test' else 'control' end, md5('pair' || (i / 2))::uuid,
          array['term ' || ((i / 2) % 500)], array['term ' || ((i / 2) % 500)], 'bench canary ' || i, 'n' || i,
          md5('acct' || (array['US','TW','AU'])[1 + i % 3] || (1 + (i / 3) % 3))::uuid, md5('conv' || (i % 20))::uuid,
          st.t, st.t + interval '60 seconds', 'bench', '1', 'bench'
        from generate_series(${lo}::bigint, ${hi}::bigint) i,
          lateral (select now() - interval '1 day' - ${spanMs}::bigint * interval '1 millisecond'
            + (i * ${spanMs / canaries}::float8) * interval '1 millisecond' as t) st
        returning id, conversation_id, deadline_at)
      insert into outcomes (canary_id, recipient_account_id, status, deadline_at, latency_ms, data_format_version,
        updated_at)
      select c.id, md5('acct' || (array['CN','US','TW','AU'])[1 + (j + hh.h) % 4] || (1 + (hh.h / 4 + j) % 3))::uuid,
        s.status, c.deadline_at,
        case when s.status = 'delivered' then (20 * exp(random() * ln(3000)))::int
             when s.status = 'delayed' then (60000 * exp(random() * ln(30)))::int end,
        1, c.deadline_at
      from c
        join conversations cv on cv.id = c.conversation_id
        cross join lateral (select abs(hashtext(c.id::text)::bigint) as h) hh
        cross join lateral generate_series(0, case when cv.kind = 'group' then 3 else 0 end) j
        cross join lateral (select random() + 0 * j as u) rr
        cross join lateral (select case when rr.u < 0.80 then 'delivered' when rr.u < 0.86 then 'delayed'
          when rr.u < 0.94 then 'missing' when rr.u < 0.96 then 'altered' when rr.u < 0.98 then 'rejected'
          when rr.u < 0.99 then 'failed' else 'pending' end as status) s`);
  }
  const [made] = await rows<{ n: number }>(q, sql`select count(*)::int as n from outcomes`);
  return made!.n;
}

/** How many outcomes the database holds. */
export async function countOutcomes(q: Queryable): Promise<number> {
  const [found] = await rows<{ n: number }>(q, sql`select count(*)::int as n from outcomes`);
  return found!.n;
}

/** The keyset position `fraction` of the way through every outcome in (send time, canary, recipient) order. */
export async function keyAt(q: Queryable, fraction: number): Promise<OutcomeKey> {
  const total = await countOutcomes(q);
  const [k] = await rows<{ t: string; c: string; r: string }>(
    q,
    sql`select ${isoMicros(sql`c.send_at`)} as t, o.canary_id as c, o.recipient_account_id as r
        from canaries c join outcomes o on o.canary_id = c.id
        order by c.send_at, o.canary_id, o.recipient_account_id
        offset ${Math.floor(total * fraction)} limit 1`,
  );
  return { sendAt: k!.t, canaryId: k!.c, recipientId: k!.r };
}

/** The outcome page as it was before the keyset bound on c.send_at (commit 0002's index unused). */
export async function naiveOutcomePage(
  q: Queryable,
  after: OutcomeKey,
  limit: number,
): Promise<ResearchOutcomeRow[]> {
  return rows<ResearchOutcomeRow>(
    q,
    sql`select c.id as canary_id, o.recipient_account_id, c.campaign_id, cv.platform, c.kind, c.pair_id,
          ${PUBLIC_TERM_SET} as term_set, ${unsealed(sql`c.text`)} as text, o.status, ${isoMillis(sql`c.send_at`)} as send_at,
          ${isoMillis(sql`o.deadline_at`)} as deadline_at, ${isoMillis(sql`o.received_at`)} as received_at,
          o.latency_ms, ${unsealed(sql`o.received_text`)} as received_text, o.failure, o.notice, c.conversation_id, cv.kind as conversation_kind,
          c.sender_account_id, s.region as sender_region, s.probe_id as sender_probe_id,
          r.region as recipient_region, r.probe_id as recipient_probe_id, o.data_format_version,
          ${isoMillis(sql`o.updated_at`)} as updated_at, ${isoMicros(sql`c.send_at`)} as key_send_at
        from ${OUTCOME_FROM}
        where (c.send_at, o.canary_id, o.recipient_account_id)
          > (${after.sendAt}::timestamptz, ${after.canaryId}::uuid, ${after.recipientId}::uuid)
        order by c.send_at, o.canary_id, o.recipient_account_id
        limit ${limit}`,
  );
}

/** The bench's campaigns, in seed order. */
export async function seededCampaigns(q: Queryable): Promise<string[]> {
  const found = await rows<{ id: string }>(q, sql`select id from campaigns order by name`);
  return found.map((r) => r.id);
}

/**
 * COPY (the export's select: same joins, columns and sealing) TO STDOUT, text format, of
 * every outcome or one campaign's; returns the rows and seconds taken.
 */
export async function copyExport(
  url: string,
  filter: { campaign?: string; from?: Date; to?: Date },
): Promise<{ rows: number; s: number }> {
  const { campaign, from: since, to: until } = filter;
  if (campaign !== undefined && !/^[0-9a-f-]{36}$/.test(campaign)) throw new Error('campaign: a uuid');
  const where = [
    campaign ? `c.campaign_id = '${campaign}'` : '',
    since ? `c.send_at >= '${since.toISOString()}'::timestamptz` : '',
    until ? `c.send_at < '${until.toISOString()}'::timestamptz` : '',
  ].filter(Boolean);
  const from = `canaries c
    join outcomes o on o.canary_id = c.id
    join accounts s on s.id = c.sender_account_id
    join accounts r on r.id = o.recipient_account_id
    join conversations cv on cv.id = c.conversation_id
    cross join lateral (select (c.deadline_at > now() or o.status = 'pending' or exists (
      select 1 from outcomes po where po.canary_id = c.id and po.status = 'pending')) as sealed) sl`;
  const unsealedCol = (col: string) => `(case when sl.sealed then null else ${col} end)`;
  const ms = (col: string) => `to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
  const select = `select c.id, o.recipient_account_id, c.campaign_id, cv.platform, c.kind, c.pair_id,
      ${unsealedCol('c.term_set')}, ${unsealedCol('c.text')}, o.status, ${ms('c.send_at')}, ${ms('o.deadline_at')},
      ${ms('o.received_at')}, o.latency_ms, ${unsealedCol('o.received_text')}, o.failure, o.notice,
      c.conversation_id, cv.kind, c.sender_account_id, s.region, s.probe_id, r.region, r.probe_id,
      o.data_format_version, ${ms('o.updated_at')}
    from ${from} ${where.length ? `where ${where.join(' and ')}` : ''}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let lines = 0;
  const started = performance.now();
  try {
    await pipeline(
      client.query(copyTo(`copy (${select}) to stdout`)),
      new Writable({
        write(chunk: Buffer, _enc, done) {
          for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
          done();
        },
      }),
    );
  } finally {
    await client.end();
  }
  return { rows: lines, s: (performance.now() - started) / 1000 };
}

/** The day in the middle of the seeded send times (UTC): the bench's narrow export window. */
export async function middleDay(q: Queryable): Promise<{ from: Date; to: Date }> {
  const [d] = await rows<{ day: string }>(
    q,
    sql`select ${isoMillis(sql`date_trunc('day', (min(send_at) + (max(send_at) - min(send_at)) / 2) at time zone 'UTC') at time zone 'UTC'`)} as day
        from canaries`,
  );
  const from = new Date(d!.day);
  return { from, to: new Date(from.getTime() + 86_400_000) };
}

/** PGlite's baseline for the export: every line of the export's select in one query; the rows. */
export async function selectExportLines(q: Queryable, filter: OutcomeFilter): Promise<number> {
  const found = await rows<{ line: string }>(q, exportSelectSql(filter, 'ndjson'));
  return found.length;
}

/** Fresh planner statistics after seeding. */
export async function analyzeAll(q: Queryable): Promise<void> {
  await q.execute(sql`analyze`);
}

/** Rollup rows per grain. */
export async function rollupRowCounts(q: Queryable): Promise<{ grain: string; n: number }[]> {
  return rows(
    q,
    sql`select grain, count(*)::int as n from outcome_rollups group by grain order by min(bucket), grain`,
  );
}
