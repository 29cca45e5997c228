import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import fc from 'fast-check';
import { beforeAll, expect, it } from 'vitest';
import { type AggregationAxis, LATENCY_BIN_EDGES_MS } from '../../protocol/research.ts';
import { describeEachDb } from '../test-support/db.ts';
import { expectWithinError } from '../test-support/quantiles.ts';
import type { Db } from './open.ts';
import {
  countByAxes,
  countByAxesRaw,
  type GroupedCounts,
  type LatencyCounts,
  latencyHistogram,
  latencyHistogramRaw,
} from './research-aggregation.ts';
import type { OutcomeFilter } from './research-filters.ts';
import {
  countByAxesFromRollups,
  LATENCY_BUCKETS,
  LATENCY_RELATIVE_ERROR,
  parseHistogram,
  quantileFromHistogram,
  rollUpOutcomes,
  rollupPlan,
} from './rollups.ts';

const T0 = Date.parse('2026-03-01T00:00:00Z');
const STATUSES = ['delivered', 'delayed', 'missing', 'altered', 'rejected', 'failed', 'pending'] as const;
const REGIONS = ['US', 'CN', 'TW', 'AU'] as const;

interface World {
  campaigns: string[];
  accounts: string[];
  conversations: string[];
}

async function buildWorld(db: Db): Promise<World> {
  const probe = randomUUID();
  await db.execute(sql`insert into probes (id, public_key, country, asn, software_version)
    values (${probe}::uuid, ${randomUUID()}, 'US', 64500, 'test')`);
  const accounts = REGIONS.map(() => randomUUID());
  for (const [i, id] of accounts.entries()) {
    await db.execute(sql`insert into accounts (id, probe_id, platform, handle, region, adapter_name, adapter_version, state)
      values (${id}::uuid, ${probe}::uuid, 'testbed', ${`h${i}-${id}`}, ${REGIONS[i]!}, 'testbed', '1', 'active')`);
  }
  const conversations = [
    ['testbed', 'direct'],
    ['testbed', 'group'],
    ['xmpp', 'group'],
  ].map(([platform, kind]) => ({ id: randomUUID(), platform: platform!, kind: kind! }));
  for (const c of conversations) {
    await db.execute(sql`insert into conversations (id, platform, ref, kind)
      values (${c.id}::uuid, ${c.platform}, ${c.id}, ${c.kind})`);
  }
  const campaigns = [randomUUID(), randomUUID()];
  for (const id of campaigns) {
    await db.execute(sql`insert into campaigns (id, name, mode, term_list_ids, conversation_selection, cadence_cron,
      deadline_seconds, term_sets_per_round, seed)
      values (${id}::uuid, 'p', 'monitor', '{}', '{}'::jsonb, '* * * * *', 60, 10, 's')`);
  }
  return { campaigns, accounts, conversations: conversations.map((c) => c.id) };
}

interface RandomOutcome {
  campaign: number;
  sender: number;
  recipient: number;
  conversation: number;
  kind: 'test' | 'control';
  sendMs: number;
  status: (typeof STATUSES)[number];
  latency: number | null;
}

const outcomeArb = fc.record({
  campaign: fc.integer({ min: 0, max: 1 }),
  sender: fc.integer({ min: 0, max: 3 }),
  recipient: fc.integer({ min: 0, max: 3 }),
  conversation: fc.integer({ min: 0, max: 2 }),
  kind: fc.constantFrom('test' as const, 'control' as const),
  // Three days, so minute, hour and day cells all hold several outcomes and edges.
  sendMs: fc.integer({ min: 0, max: 3 * 86_400_000 - 1 }),
  status: fc.constantFrom(...STATUSES),
  latency: fc.option(
    fc.oneof(
      fc.integer({ min: 0, max: 5000 }),
      fc.integer({ min: 0, max: 2 ** 30 - 1 }),
      // on the edges of /latency's bins
      fc.constantFrom(...LATENCY_BIN_EDGES_MS),
    ),
    {
      nil: null,
    },
  ),
});

async function insertOutcomes(db: Db, w: World, list: RandomOutcome[]): Promise<string[]> {
  const rows = list.map((o) => ({
    id: randomUUID(),
    campaign: w.campaigns[o.campaign]!,
    sender: w.accounts[o.sender]!,
    recipient: w.accounts[o.recipient]!,
    conversation: w.conversations[o.conversation]!,
    kind: o.kind,
    send: new Date(T0 + o.sendMs).toISOString(),
    status: o.status,
    latency: o.latency,
  }));
  if (rows.length === 0) return [];
  const input = sql`jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as x(id uuid, campaign uuid, sender uuid,
    recipient uuid, conversation uuid, kind text, send timestamptz, status text, latency int)`;
  await db.execute(sql`insert into canaries (id, campaign_id, kind, pair_id, term_set, carried_terms, text, nonce,
      sender_account_id, conversation_id, send_at, deadline_at, template_id, template_version, seed)
    select id, campaign, kind, gen_random_uuid(), '{a}', '{a}', 't', id::text, sender, conversation, send,
      send + interval '1 minute', 't', '1', 's' from ${input}`);
  await db.execute(sql`insert into outcomes (canary_id, recipient_account_id, status, deadline_at, latency_ms,
      data_format_version)
    select id, recipient, status, send + interval '1 minute', latency, 1 from ${input}`);
  return rows.map((r) => r.id);
}

const ROLLUP_AXES: AggregationAxis[] = [
  'minute',
  'hour',
  'day',
  'sender_region',
  'recipient_region',
  'conversation_kind',
  'platform',
  'kind',
  'campaign',
];

const queryArb = fc.record({
  axes: fc
    .uniqueArray(fc.constantFrom(...ROLLUP_AXES), { minLength: 1, maxLength: 2 })
    .map((a) => a as AggregationAxis[]),
  campaign: fc.option(fc.integer({ min: 0, max: 1 }), { nil: undefined }),
  platform: fc.option(fc.constantFrom('testbed', 'xmpp'), { nil: undefined }),
  kind: fc.option(fc.constantFrom('test' as const, 'control' as const), { nil: undefined }),
  statuses: fc.option(
    fc
      .subarray([...STATUSES], { minLength: 1 })
      .map((s) => (s.includes('delivered') && !s.includes('delayed') ? [...s, 'delayed'] : s))
      .map((s) => (s.includes('delayed') && !s.includes('delivered') ? [...s, 'delivered'] : s)),
    { nil: undefined },
  ),
  senderRegions: fc.option(fc.subarray([...REGIONS], { minLength: 1 }), { nil: undefined }),
  recipientRegions: fc.option(fc.subarray([...REGIONS], { minLength: 1 }), { nil: undefined }),
  conversationKind: fc.option(fc.constantFrom('direct' as const, 'group' as const), { nil: undefined }),
  // from/to on whole minutes, hours or days (what the rollups answer), or none.
  fromUnit: fc.option(fc.constantFrom(60_000, 3_600_000, 86_400_000), { nil: undefined }),
  fromSteps: fc.integer({ min: 0, max: 2 }),
  toUnit: fc.option(fc.constantFrom(60_000, 3_600_000, 86_400_000), { nil: undefined }),
  toSteps: fc.integer({ min: 1, max: 3 }),
});

function toFilter(w: World, q: Parameters<Parameters<typeof queryArb.map>[0]>[0]): OutcomeFilter {
  const from = q.fromUnit === undefined ? undefined : new Date(T0 + q.fromSteps * q.fromUnit * 7);
  let to = q.toUnit === undefined ? undefined : new Date(T0 + q.toSteps * q.toUnit * 20);
  if (from && to && to <= from) to = undefined;
  return {
    campaign: q.campaign === undefined ? undefined : w.campaigns[q.campaign],
    platform: q.platform,
    kind: q.kind,
    statuses: q.statuses,
    senderRegions: q.senderRegions,
    recipientRegions: q.recipientRegions,
    conversationKind: q.conversationKind,
    from,
    to,
  };
}

/** Counts and keys equal; latency quantiles within the histogram's error. */
function expectSame(fromRollups: GroupedCounts[], raw: GroupedCounts[]): void {
  const counts = (rs: GroupedCounts[]) => rs.map((r) => [r.k, ...STATUSES.map((s) => r[s])]);
  expect(counts(fromRollups)).toEqual(counts(raw));
  for (const [i, r] of raw.entries()) {
    expectWithinError(fromRollups[i]!.latency_p50_ms, r.latency_p50_ms);
    expectWithinError(fromRollups[i]!.latency_p95_ms, r.latency_p95_ms);
  }
}

/** /latency: bins and n equal, the four quantiles within the histogram's error. */
function expectSameLatency(fromRollups: LatencyCounts[], raw: LatencyCounts[]): void {
  expect(fromRollups.map((s) => [s.kind, s.n, s.counts])).toEqual(raw.map((s) => [s.kind, s.n, s.counts]));
  for (const [i, r] of raw.entries()) {
    for (const key of ['p50', 'p90', 'p95', 'p99'] as const) expectWithinError(fromRollups[i]![key], r[key]);
  }
}

async function reset(db: Db): Promise<void> {
  await db.execute(sql`delete from outcome_rollups`);
  await db.execute(sql`delete from outcome_rollup_totals`);
  await db.execute(sql`delete from rollup_watermark`);
  await db.execute(sql`delete from outcomes`);
  await db.execute(sql`delete from canaries`);
}

it('reads percentile_cont of a histogram bucket by bucket', () => {
  expect(quantileFromHistogram([0, 0], 0.5)).toBeNull();
  // Two outcomes below 1 ms and one in [1, 2^(1/4)): p50 is 0, p100 its bucket's middle.
  expect(quantileFromHistogram([2, 1], 0.5)).toBe(0);
  expect(quantileFromHistogram([2, 1], 1)).toBeCloseTo(2 ** (1 / 8), 12);
  expect(quantileFromHistogram([1, 1], 0.5)).toBeCloseTo(2 ** (1 / 8) / 2, 12);
});

it('reads a histogram sent as text as split and Number would', () => {
  fc.assert(
    fc.property(
      fc.array(fc.nat({ max: 2 ** 31 - 1 }), { minLength: 1, maxLength: LATENCY_BUCKETS }),
      (counts) => {
        const into = new Float64Array(LATENCY_BUCKETS).fill(7);
        const got = [...parseHistogram(counts.join(','), into)];
        expect(got).toEqual([...counts, ...new Array<number>(LATENCY_BUCKETS - counts.length).fill(0)]);
      },
    ),
  );
  expect([...parseHistogram('', new Float64Array(3).fill(1))]).toEqual([0, 0, 0]);
});

it('answers from the rollups only what they hold exactly', () => {
  expect(rollupPlan({}, ['hour', 'kind'])).toEqual({ grain: 'hour', scoped: false });
  expect(rollupPlan({}, ['sender_region'])).toEqual({ grain: 'day', scoped: true });
  expect(rollupPlan({}, ['day', 'minute'])).toEqual({ grain: 'minute', scoped: false });
  expect(rollupPlan({ from: new Date('2026-03-01T10:00:00Z') }, ['kind'])).toEqual({
    grain: 'hour',
    scoped: false,
  });
  expect(rollupPlan({ from: new Date('2026-03-01T10:00:30Z') }, ['kind'])).toBeNull();
  expect(rollupPlan({}, ['term_set'])).toBeNull();
  expect(rollupPlan({ termSet: ['a'] }, ['hour'])).toBeNull();
  expect(rollupPlan({ probe: randomUUID() }, ['hour'])).toBeNull();
  expect(rollupPlan({ statuses: ['delivered'] }, ['hour'])).toBeNull();
  expect(rollupPlan({ statuses: ['missing'] }, ['hour'])).toEqual({ grain: 'hour', scoped: false });
});

describeEachDb('rollups', (getDb) => {
  let w: World;
  beforeAll(async () => {
    w = await buildWorld(getDb().db);
  }, 120_000);

  it('equal the raw aggregation for random outcomes, filters and grains, with writes after the job', async () => {
    const { db } = getDb();
    await fc.assert(
      fc.asyncProperty(
        fc.array(outcomeArb, { minLength: 1, maxLength: 40 }),
        fc.array(outcomeArb, { maxLength: 10 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(...STATUSES)), { maxLength: 5 }),
        fc.boolean(),
        fc.array(queryArb, { minLength: 1, maxLength: 4 }),
        // Both ways a run recomputes cells: lookups per cell, or hash joins over everything.
        fc.constantFrom(0, 1_000_000),
        async (before, after, changes, rollAgain, queries, manyCells) => {
          await reset(db);
          const ids = await insertOutcomes(db, w, before);
          await rollUpOutcomes(db, { manyCells });
          // Written after the job: new outcomes and status changes (a late receipt, the finaliser).
          await insertOutcomes(db, w, after);
          for (const [i, status] of changes) {
            await db.execute(sql`update outcomes set status = ${status}, updated_at = now()
              where canary_id = ${ids[i % ids.length]!}::uuid`);
          }
          if (rollAgain) await rollUpOutcomes(db, { manyCells });
          for (const q of queries) {
            const filter = toFilter(w, q);
            const plan = rollupPlan(filter, q.axes);
            expect(plan).not.toBeNull();
            const raw = await countByAxesRaw(db, filter, q.axes);
            expectSame(await countByAxesFromRollups(db, filter, q.axes, plan!), raw);
            expectSame(await countByAxes(db, filter, q.axes), raw);
            // /latency from the same rollups (decision 032): the bins exactly.
            const latency = await latencyHistogram(db, filter);
            expect(latency.quantileError).toBe(LATENCY_RELATIVE_ERROR);
            expectSameLatency(latency.series, await latencyHistogramRaw(db, filter, LATENCY_BIN_EDGES_MS));
          }
        },
      ),
      { numRuns: 60 },
    );
  }, 600_000);

  it('keeps hour and day rows equal to the sum of the rows beneath them', async () => {
    const { db } = getDb();
    await reset(db);
    await insertOutcomes(
      db,
      w,
      fc.sample(outcomeArb, { numRuns: 200, seed: 14 }).map((o) => ({ ...o, status: 'delivered' as const })),
    );
    const run = await rollUpOutcomes(db);
    expect(run.cells).toBeGreaterThan(0);
    const totals = (
      (await db.execute(sql`select grain, scoped, sum(delivered)::int as n from outcome_rollups
        group by 1, 2 order by 1, 2`)) as unknown as { rows: { grain: string; scoped: boolean; n: number }[] }
    ).rows;
    expect(totals).toHaveLength(6);
    for (const t of totals) expect(t.n).toBe(200);
    // The totals over campaigns: every row equals the sum of the campaigns' rows of its bucket and scope.
    const mismatched = (
      (await db.execute(sql`select count(*)::int as n from outcome_rollup_totals t
        full join (select grain, bucket, scoped, kind, platform, conversation_kind, sender_region, recipient_region,
            sum(delivered)::int as delivered
          from outcome_rollups group by 1, 2, 3, 4, 5, 6, 7, 8) r
        using (grain, bucket, scoped, kind, platform, conversation_kind, sender_region, recipient_region)
        where t.delivered is distinct from r.delivered`)) as unknown as { rows: { n: number }[] }
    ).rows[0]!.n;
    expect(mismatched).toBe(0);
    expect(
      (
        (await db.execute(sql`select count(*)::int as n from outcome_rollup_totals`)) as unknown as {
          rows: { n: number }[];
        }
      ).rows[0]!.n,
    ).toBeGreaterThan(0);
    // Nothing written since: a second run recomputes nothing.
    expect((await rollUpOutcomes(db)).cells).toBe(0);
  }, 120_000);
});
