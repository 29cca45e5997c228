import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import fc from 'fast-check';
import { beforeAll, expect, it } from 'vitest';
import type { AggregationAxis } from '../../protocol/research.ts';
import { describeEachDb } from '../test-support/db.ts';
import { expectWithinError } from '../test-support/quantiles.ts';
import type { Db } from './open.ts';
import {
  countByAxes,
  countByAxesRaw,
  countByTermSet,
  countByTermSetRaw,
  type GroupedCounts,
  type TermSetCounts,
} from './research-aggregation.ts';
import type { OutcomeFilter } from './research-filters.ts';
import { LATENCY_RELATIVE_ERROR } from './rollups.ts';
import {
  countByTermSetFromRollups,
  GRACE_MS,
  rollUpTermSets,
  termSetProgress,
  termSetRollupsHold,
  termSetTimelineHolds,
  wholeHours,
  wholeSpans,
} from './term-set-rollups.ts';

const STATUSES = ['delivered', 'delayed', 'missing', 'altered', 'rejected', 'failed', 'pending'] as const;
const TERM_SETS = [['a'], ['b'], ['a', 'b'], ['六四'], ['"x", {y}']];
const MINUTE = 60_000;

interface World {
  campaigns: string[];
  accounts: string[];
  conversation: string;
}

async function buildWorld(db: Db): Promise<World> {
  const probe = randomUUID();
  await db.execute(sql`insert into probes (id, public_key, country, asn, software_version)
    values (${probe}::uuid, ${randomUUID()}, 'US', 64500, 'test')`);
  const accounts = [randomUUID(), randomUUID(), randomUUID()];
  for (const [i, id] of accounts.entries()) {
    await db.execute(sql`insert into accounts (id, probe_id, platform, handle, region, adapter_name, adapter_version, state)
      values (${id}::uuid, ${probe}::uuid, 'testbed', ${`t${i}-${id}`}, ${['US', 'CN', 'TW'][i]!}, 'testbed', '1', 'active')`);
  }
  const conversation = randomUUID();
  await db.execute(sql`insert into conversations (id, platform, ref, kind)
    values (${conversation}::uuid, 'testbed', ${conversation}, 'group')`);
  const campaigns = [randomUUID(), randomUUID()];
  for (const id of campaigns) {
    await db.execute(sql`insert into campaigns (id, name, mode, term_list_ids, conversation_selection, cadence_cron,
      deadline_seconds, term_sets_per_round, seed)
      values (${id}::uuid, 'ts', 'monitor', '{}', '{}'::jsonb, '* * * * *', 60, 10, 's')`);
  }
  return { campaigns, accounts, conversation };
}

/**
 * A canary relative to the database's now: its deadline long past, past but within the job's
 * grace, or ahead (sealed). Never within a minute of now, so no deadline passes between the two
 * reads compared.
 */
const canaryArb = fc.record({
  campaign: fc.integer({ min: 0, max: 1 }),
  termSet: fc.integer({ min: 0, max: TERM_SETS.length - 1 }),
  kind: fc.constantFrom('test' as const, 'control' as const),
  deadline: fc.oneof(
    fc.integer({ min: -3 * 24 * 60, max: -10 }).map((m) => m * MINUTE),
    fc.integer({ min: -GRACE_MS / MINUTE + 1, max: -2 }).map((m) => m * MINUTE),
    fc.integer({ min: 60, max: 600 }).map((m) => m * MINUTE),
  ),
  // sent up to 3 hours before its deadline (a campaign may allow hours for a delayed delivery)
  sendBefore: fc.integer({ min: 1, max: 180 }).map((m) => m * MINUTE),
  // one outcome per recipient (0 to 3 of them: a canary without outcomes counts nowhere)
  outcomes: fc.array(
    fc.record({
      status: fc.constantFrom(...STATUSES),
      latency: fc.option(fc.integer({ min: 0, max: 400_000 }), { nil: null }),
    }),
    { maxLength: 3 },
  ),
});
/**
 * One end of a send-time window, relative to now (as the canaries' times): on an hour, or
 * anywhere, from 3 days and 4 hours ago to 10 hours ahead; or absent (open).
 */
const windowEnd = fc.option(
  fc.oneof(
    fc
      .integer({ min: -76, max: 10 })
      .map((h) => (now: number) => (Math.floor(now / 3_600_000) + h) * 3_600_000),
    fc.integer({ min: -76 * 3600, max: 10 * 3600 }).map((sec) => (now: number) => now + sec * 1000),
  ),
  { nil: undefined },
);

type CanaryArb = typeof canaryArb extends fc.Arbitrary<infer T> ? T : never;

async function insertCanaries(db: Db, w: World, list: CanaryArb[]): Promise<string[]> {
  const rows = list.map((c) => ({
    id: randomUUID(),
    campaign: w.campaigns[c.campaign]!,
    kind: c.kind,
    termSet: TERM_SETS[c.termSet]!,
    deadlineMs: c.deadline,
    sendMs: c.deadline - c.sendBefore,
    sender: w.accounts[0]!,
    conversation: w.conversation,
  }));
  if (rows.length === 0) return [];
  await db.execute(sql`insert into canaries (id, campaign_id, kind, pair_id, term_set, carried_terms, text, nonce,
      sender_account_id, conversation_id, send_at, deadline_at, template_id, template_version, seed)
    select x.id, x.campaign, x.kind, gen_random_uuid(),
      array(select jsonb_array_elements_text(x."termSet")), '{a}', 't', x.id::text, x.sender, x.conversation,
      now() + x."sendMs" * interval '1 millisecond', now() + x."deadlineMs" * interval '1 millisecond', 't', '1', 's'
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as x(id uuid, campaign uuid, kind text, "termSet" jsonb,
      "deadlineMs" bigint, "sendMs" bigint, sender uuid, conversation uuid)`);
  const outcomes = list.flatMap((c, i) =>
    c.outcomes.map((o, r) => ({ canary: rows[i]!.id, recipient: w.accounts[r]!, ...o })),
  );
  if (outcomes.length > 0) {
    await db.execute(sql`insert into outcomes (canary_id, recipient_account_id, status, deadline_at, latency_ms,
        data_format_version)
      select x.canary, x.recipient, x.status, c.deadline_at, x.latency, 1
      from jsonb_to_recordset(${JSON.stringify(outcomes)}::jsonb) as x(canary uuid, recipient uuid, status text, latency int)
        join canaries c on c.id = x.canary`);
  }
  return rows.map((r) => r.id);
}

async function reset(db: Db): Promise<void> {
  await db.execute(sql`delete from term_set_rollups`);
  await db.execute(sql`delete from term_set_hour_rollups`);
  await db.execute(sql`delete from term_set_day_rollups`);
  await db.execute(sql`delete from term_set_quarter_rollups`);
  await db.execute(sql`delete from term_set_rollup_progress`);
  await db.execute(sql`delete from outcomes`);
  await db.execute(sql`delete from canaries`);
}

/** Same rows (order aside), same counts and first/last send; quantiles within the histogram's error. */
function expectSame(fromRollups: TermSetCounts[], raw: TermSetCounts[]): void {
  const key = (r: TermSetCounts) => `${JSON.stringify(r.term_set)}|${r.kind}`;
  const sorted = (rs: TermSetCounts[]) => [...rs].sort((a, b) => key(a).localeCompare(key(b)));
  const exact = (rs: TermSetCounts[]) =>
    sorted(rs).map((r) => [key(r), ...STATUSES.map((s) => r[s]), r.first_sent_at, r.last_sent_at]);
  expect(exact(fromRollups)).toEqual(exact(raw));
  const got = sorted(fromRollups);
  for (const [i, r] of sorted(raw).entries()) {
    expectWithinError(got[i]!.latency_p50_ms, r.latency_p50_ms);
    expectWithinError(got[i]!.latency_p95_ms, r.latency_p95_ms);
  }
}

/** Same groups in the same order with the same counts; quantiles within the histogram's error. */
function expectSameTimeline(fromRollups: GroupedCounts[], raw: GroupedCounts[]): void {
  const exact = (rs: GroupedCounts[]) => rs.map((r) => [...r.k, ...STATUSES.map((s) => r[s])]);
  expect(exact(fromRollups)).toEqual(exact(raw));
  for (const [i, r] of raw.entries()) {
    expectWithinError(fromRollups[i]!.latency_p50_ms, r.latency_p50_ms);
    expectWithinError(fromRollups[i]!.latency_p95_ms, r.latency_p95_ms);
  }
}

const TIMELINES: AggregationAxis[][] = [
  ['hour', 'kind'],
  ['day', 'kind'],
  ['kind', 'hour'],
  ['hour'],
  ['kind'],
];

it('answers one term set by hour or day and arm, with campaign and arm filters only', () => {
  expect(termSetTimelineHolds({ termSet: ['a'] }, ['hour', 'kind'])).toBe(true);
  expect(termSetTimelineHolds({ termSet: ['a'], campaign: randomUUID(), kind: 'test' }, ['day'])).toBe(true);
  expect(termSetTimelineHolds({}, ['hour', 'kind'])).toBe(false);
  expect(termSetTimelineHolds({ termSet: ['a'] }, ['minute'])).toBe(false);
  expect(termSetTimelineHolds({ termSet: ['a'] }, ['hour', 'recipient_region'])).toBe(false);
  expect(termSetTimelineHolds({ termSet: ['a'] }, [])).toBe(false);
  expect(termSetTimelineHolds({ termSet: ['a'], from: new Date(), to: new Date() }, ['hour'])).toBe(true);
  expect(termSetTimelineHolds({ termSet: ['a'], statuses: ['missing'] }, ['hour'])).toBe(false);
  expect(termSetTimelineHolds({ termSet: ['a'], senderRegions: ['CN'] }, ['hour'])).toBe(false);
});

it('splits a send-time window into whole hours and the parts of an hour at its edges', () => {
  const at = (hhmm: string) => new Date(`2026-12-04T${hhmm}:00.000Z`);
  expect(wholeHours(undefined, undefined)).toEqual({
    whole: { start: undefined, end: undefined },
    edges: [],
  });
  expect(wholeHours(at('10:00'), at('13:00'))).toEqual({
    whole: { start: at('10:00'), end: at('13:00') },
    edges: [],
  });
  expect(wholeHours(at('10:15'), at('13:45'))).toEqual({
    whole: { start: at('11:00'), end: at('13:00') },
    edges: [
      { from: at('10:15'), to: at('11:00') },
      { from: at('13:00'), to: at('13:45') },
    ],
  });
  expect(wholeHours(at('10:15'), undefined)).toEqual({
    whole: { start: at('11:00'), end: undefined },
    edges: [{ from: at('10:15'), to: at('11:00') }],
  });
  expect(wholeHours(undefined, at('13:45'))).toEqual({
    whole: { start: undefined, end: at('13:00') },
    edges: [{ from: at('13:00'), to: at('13:45') }],
  });
  // within one hour, or across one hour's boundary without a whole hour: all from the outcomes
  expect(wholeHours(at('10:15'), at('10:45'))).toEqual({
    whole: null,
    edges: [{ from: at('10:15'), to: at('10:45') }],
  });
  expect(wholeHours(at('10:15'), at('11:45'))).toEqual({
    whole: null,
    edges: [{ from: at('10:15'), to: at('11:45') }],
  });
  // an empty window
  expect(wholeHours(at('11:00'), at('10:00'))).toEqual({ whole: null, edges: [] });
});

it("splits a window's whole hours into whole days, the quarters of a day and the hours beside them", () => {
  const at = (day: number, hh: string) => new Date(`2026-12-0${day}T${hh}:00:00.000Z`);
  const span = (grain: string, start?: Date, end?: Date) => ({ grain, range: { start, end } });
  expect(wholeSpans(null)).toEqual([]);
  expect(wholeSpans({})).toEqual([span('day')]);
  expect(wholeSpans({ start: at(1, '00'), end: at(4, '00') })).toEqual([
    span('day', at(1, '00'), at(4, '00')),
  ]);
  // on each side: whole quarters (00, 06, 12, 18 UTC), then hours
  expect(wholeSpans({ start: at(1, '10'), end: at(4, '13') })).toEqual([
    span('day', at(2, '00'), at(4, '00')),
    span('quarter', at(1, '12'), at(2, '00')),
    span('hour', at(1, '10'), at(1, '12')),
    span('quarter', at(4, '00'), at(4, '12')),
    span('hour', at(4, '12'), at(4, '13')),
  ]);
  // a side on a quarter has no hours; a side within one quarter no quarters
  expect(wholeSpans({ start: at(1, '18'), end: at(3, '05') })).toEqual([
    span('day', at(2, '00'), at(3, '00')),
    span('quarter', at(1, '18'), at(2, '00')),
    span('hour', at(3, '00'), at(3, '05')),
  ]);
  expect(wholeSpans({ start: at(1, '10') })).toEqual([
    span('day', at(2, '00'), undefined),
    span('quarter', at(1, '12'), at(2, '00')),
    span('hour', at(1, '10'), at(1, '12')),
  ]);
  expect(wholeSpans({ end: at(1, '07') })).toEqual([
    span('day', undefined, at(1, '00')),
    span('quarter', at(1, '00'), at(1, '06')),
    span('hour', at(1, '06'), at(1, '07')),
  ]);
  // no whole day: quarters and hours; no whole quarter: hours
  expect(wholeSpans({ start: at(1, '10'), end: at(2, '13') })).toEqual([
    span('quarter', at(1, '12'), at(2, '12')),
    span('hour', at(1, '10'), at(1, '12')),
    span('hour', at(2, '12'), at(2, '13')),
  ]);
  expect(wholeSpans({ start: at(1, '07'), end: at(1, '11') })).toEqual([
    span('hour', at(1, '07'), at(1, '11')),
  ]);
  // a week off the hour, starting at any hour: 6 day rows and at most 8 quarter or hour rows per
  // term set and arm (before quarters: 23 hour rows)
  for (let h = 0; h < 24; h++) {
    const start = new Date(at(1, '00').getTime() + h * 3_600_000);
    const parts = wholeSpans({ start, end: new Date(start.getTime() + (7 * 24 - 1) * 3_600_000) });
    const rowsPerSet = parts.reduce(
      (n, p) =>
        n +
        (p.range.end!.getTime() - p.range.start!.getTime()) /
          { day: 864e5, quarter: 216e5, hour: 36e5 }[p.grain],
      0,
    );
    expect(parts.reduce((n, p) => n + p.range.end!.getTime() - p.range.start!.getTime(), 0)).toBe(
      167 * 3_600_000,
    );
    expect(rowsPerSet).toBeLessThanOrEqual(6 + 8);
  }
});

it('holds only campaign, arm and time-window filters', () => {
  expect(termSetRollupsHold({})).toBe(true);
  expect(termSetRollupsHold({ campaign: randomUUID(), kind: 'test' })).toBe(true);
  expect(termSetRollupsHold({ from: new Date(), to: new Date() })).toBe(true);
  expect(termSetRollupsHold({ statuses: ['missing'] })).toBe(false);
  expect(termSetRollupsHold({ statuses: [] })).toBe(true);
  expect(termSetRollupsHold({ recipientRegions: ['CN'] })).toBe(false);
  expect(termSetRollupsHold({ termSet: ['a'] })).toBe(false);
});

describeEachDb('term-set rollups', (getDb) => {
  let w: World;
  beforeAll(async () => {
    w = await buildWorld(getDb().db);
  }, 120_000);

  it("equal the raw term-set list and one term set's timeline for random canaries, deadlines, pending outcomes and writes after the job", async () => {
    const { db } = getDb();
    await fc.assert(
      fc.asyncProperty(
        fc.array(canaryArb, { minLength: 1, maxLength: 30 }),
        fc.array(canaryArb, { maxLength: 8 }),
        // status changes after the job: a late receipt, the finaliser, even back to pending
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(...STATUSES)), { maxLength: 5 }),
        fc.constantFrom('never', 'before', 'both', 'after'),
        fc.array(
          fc.record({
            campaign: fc.option(fc.integer({ min: 0, max: 1 }), { nil: undefined }),
            kind: fc.option(fc.constantFrom('test' as const, 'control' as const), { nil: undefined }),
            limit: fc.constantFrom(1, 2, 5000),
            termSet: fc.integer({ min: 0, max: TERM_SETS.length - 1 }),
            axes: fc.constantFrom(...TIMELINES),
            from: windowEnd,
            to: windowEnd,
          }),
          { minLength: 1, maxLength: 3 },
        ),
        // Both ways a run adds canaries: hash joins over everything, or a lookup per canary.
        fc.constantFrom(0, 1_000_000),
        async (before, after, changes, jobs, queries, manyCanaries) => {
          await reset(db);
          const ids = await insertCanaries(db, w, before);
          if (jobs === 'before' || jobs === 'both') await rollUpTermSets(db, { manyCanaries });
          await insertCanaries(db, w, after);
          for (const [i, status] of changes) {
            await db.execute(sql`update outcomes set status = ${status}, updated_at = now()
              where canary_id = ${ids[i % ids.length]!}::uuid`);
          }
          if (jobs === 'both' || jobs === 'after') await rollUpTermSets(db, { manyCanaries });
          for (const q of queries) {
            const filter: OutcomeFilter = {
              campaign: q.campaign === undefined ? undefined : w.campaigns[q.campaign],
              kind: q.kind,
            };
            const raw = await countByTermSetRaw(db, filter, q.limit);
            expectSame(await countByTermSetFromRollups(db, filter, q.limit), raw);
            const list = await countByTermSet(db, filter, q.limit);
            expect(list.quantileError).toBe(LATENCY_RELATIVE_ERROR);
            expectSame(list.counts, raw);
            // the list within a send-time window (whole hours, edges, an open end, empty)
            const now = Date.now();
            const within: OutcomeFilter = {
              ...filter,
              from: q.from === undefined ? undefined : new Date(q.from(now)),
              to: q.to === undefined ? undefined : new Date(q.to(now)),
            };
            expect(termSetRollupsHold(within)).toBe(true);
            expectSame(
              (await countByTermSet(db, within, q.limit)).counts,
              await countByTermSetRaw(db, within, q.limit),
            );
            // and over the last four whole days (day rows only: every canary's day is one of them)
            const today = Math.floor(now / 86_400_000) * 86_400_000;
            const days: OutcomeFilter = {
              ...filter,
              from: new Date(today - 4 * 86_400_000),
              to: new Date(today),
            };
            expectSame(
              (await countByTermSet(db, days, q.limit)).counts,
              await countByTermSetRaw(db, days, q.limit),
            );
            // the terms view's timeline of one term set, from term_set_hour_rollups
            const one: OutcomeFilter = { ...filter, termSet: TERM_SETS[q.termSet] };
            expect(termSetTimelineHolds(one, q.axes)).toBe(true);
            expectSameTimeline(await countByAxes(db, one, q.axes), await countByAxesRaw(db, one, q.axes));
            // and within the send-time window
            const window: OutcomeFilter = { ...one, from: within.from, to: within.to };
            expect(termSetTimelineHolds(window, q.axes)).toBe(true);
            expectSameTimeline(
              await countByAxes(db, window, q.axes),
              await countByAxesRaw(db, window, q.axes),
            );
          }
        },
      ),
      { numRuns: 50 },
    );
  }, 600_000);

  it('counts a canary once it is final, keeps it out while sealed, and moves closed_until forward', async () => {
    const { db } = getDb();
    await reset(db);
    const base = { campaign: 0, termSet: 0, kind: 'test' as const, sendBefore: MINUTE };
    const [old] = await insertCanaries(db, w, [
      { ...base, deadline: -60 * MINUTE, outcomes: [{ status: 'missing', latency: null }] },
    ]);
    // Sealed: deadline ahead; and one past its deadline with an outcome still pending.
    await insertCanaries(db, w, [
      { ...base, termSet: 1, deadline: 60 * MINUTE, outcomes: [{ status: 'delivered', latency: 10 }] },
      { ...base, termSet: 2, deadline: -30 * MINUTE, outcomes: [{ status: 'pending', latency: null }] },
    ]);
    const run = await rollUpTermSets(db);
    expect(run.advanced).toBe(2);
    const stored = await db.execute(sql`select term_set, missing from term_set_rollups`);
    expect((stored as unknown as { rows: unknown[] }).rows).toEqual([{ term_set: ['a'], missing: 1 }]);
    const progress = await termSetProgress(db);
    expect(progress).toHaveLength(2);
    const list = async () => (await countByTermSet(db, {}, 5000)).counts.map((r) => r.term_set);
    expect(await list()).toEqual([['a']]);
    // The finaliser marks the pending one: counted at once (read from the outcomes), then by the job.
    await db.execute(
      sql`update outcomes set status = 'missing', updated_at = now() where status = 'pending'`,
    );
    expect((await list()).sort()).toEqual([['a'], ['a', 'b']]);
    expect((await rollUpTermSets(db)).recomputed).toBe(1);
    expect((await list()).sort()).toEqual([['a'], ['a', 'b']]);
    // A late receipt on a counted canary: the row is recomputed, the answer right all along.
    await db.execute(sql`update outcomes set status = 'delayed', latency_ms = 70000, updated_at = now()
      where canary_id = ${old!}::uuid`);
    const late = (await countByTermSet(db, { kind: 'test' }, 5000)).counts.find(
      (r) => r.term_set[0] === 'a' && r.term_set.length === 1,
    );
    expect([late?.missing, late?.delayed]).toEqual([0, 1]);
    await rollUpTermSets(db);
    const row = await db.execute(sql`select missing, delayed from term_set_rollups where term_set = '{a}'`);
    expect((row as unknown as { rows: unknown[] }).rows).toEqual([{ missing: 0, delayed: 1 }]);
  }, 120_000);
});
