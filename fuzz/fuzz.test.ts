/**
 * The seeded, bounded part of the fuzz suite (the unbounded one is `npm run fuzz`):
 * generated requests against every endpoint — the probe API with valid signatures around
 * valid, boundary and hostile bodies, the admin API, research query strings, and the
 * testbed API. Properties: never a 5xx, and in every events batch that mixes valid and
 * hostile events, each valid event is stored exactly once (read back from the database).
 * All cases run; the failures are listed together, one line each.
 *
 * FUZZ_SEED=<n> replays another seed; FUZZ_RUNS=<n> scales every group.
 */
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../collector/app.ts';
import type { Db } from '../collector/db/open.ts';
import { describeEachDb } from '../collector/test-support/db.ts';
import { TEST_ADMIN_TOKEN, TEST_HASH_KEY } from '../collector/test-support/probe.ts';
import { startTestbed, type Testbed } from '../testbed/index.ts';
import {
  type CollectorContext,
  check,
  collectorGroups,
  type FuzzRequest,
  type TestbedContext,
  testbedRequest,
} from './requests.ts';
import { httpSender, injectSender, type Send } from './send.ts';
import { collectorContext, testbedContext } from './setup.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_201);
const SCALE = Number(process.env.FUZZ_RUNS ?? 1);

/** Sends `numRuns` generated requests one after another; returns every broken property. */
async function runGroup(
  arb: fc.Arbitrary<FuzzRequest>,
  numRuns: number,
  send: Send,
  db: Db | undefined,
): Promise<{ problems: string[]; statuses: Record<string, number> }> {
  const problems: string[] = [];
  const statuses: Record<string, number> = {};
  for (const r of fc.sample(arb, { seed: SEED, numRuns: Math.max(1, Math.round(numRuns * SCALE)) })) {
    const built = r.build();
    const answer = await send(built);
    statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
    for (const p of await check(db, built, answer)) problems.push(`${r.endpoint}: ${p}`);
  }
  return { problems, statuses };
}

describeEachDb('fuzz: collector endpoints', (getDb) => {
  let app: FastifyInstance;
  let ctx: CollectorContext;

  beforeAll(async () => {
    app = await buildApp({
      db: getDb().db,
      config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
      // The properties are about content, not volume: the limits are high enough not to interfere.
      rateLimit: { max: 1_000_000, timeWindowMs: 60_000 },
      probeRateLimit: { max: 1_000_000, timeWindowMs: 60_000 },
      adminRateLimit: { max: 1_000_000, timeWindowMs: 60_000 },
      // refused requests are most of what the fuzz sends: the per-address refusal limit too
      authFailureLimit: { max: 1_000_000, timeWindowMs: 60_000 },
    });
    ctx = await collectorContext(app, getDb().db);
  });
  afterAll(async () => {
    await app?.close();
  });

  const RUNS: Record<keyof ReturnType<typeof collectorGroups>, number> = {
    events: 60,
    envelope: 15,
    foreign: 8,
    checkin: 30,
    register: 15,
    auth: 15,
    admin: 50,
    research: 60,
  };

  for (const [group, runs] of Object.entries(RUNS)) {
    it(`${group}: never a 5xx${group === 'events' ? '; every valid event of a mixed batch stored exactly once' : ''}`, async () => {
      const arb = collectorGroups(ctx)[group as keyof typeof RUNS];
      const { problems, statuses } = await runGroup(arb, runs, injectSender(app), getDb().db);
      // Some requests must get through: a suite answered only with 4xx proves little.
      expect(Object.keys(statuses).some((s) => Number(s) < 300) || group !== 'events').toBe(true);
      expect(problems).toEqual([]);
    });
  }
});

describe('fuzz: testbed API', () => {
  let testbed: Testbed;
  let ctx: TestbedContext;

  beforeAll(async () => {
    testbed = await startTestbed({ policy: { regions: ['US', 'CN'] }, rateLimit: false, seed: 1 });
    ctx = await testbedContext(testbed.url);
  });
  afterAll(async () => {
    await testbed?.close();
  });

  it('never answers 5xx', async () => {
    const { problems, statuses } = await runGroup(
      testbedRequest(ctx),
      150,
      httpSender(testbed.url),
      undefined,
    );
    expect(Object.keys(statuses).some((s) => Number(s) < 300)).toBe(true);
    expect(problems).toEqual([]);
  });
});
