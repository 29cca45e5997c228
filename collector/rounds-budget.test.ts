/**
 * Rounds plan only what the senders can send (docs/decisions/014): probes report each account's
 * send capacity at check-in (pacing, limits, what they still allow, what is queued), and a round
 * gives a sender account no more canaries than it can send between the round's start and its
 * last deadline, less the canaries already planned for it there and not yet reported sent.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { expect, it } from 'vitest';
import type { SendCapacity } from '../protocol/index.ts';
import { budgetLeft, DEFAULT_CAPACITY, dueWhenHeard, nextCheckin, sendsWithin } from './capacity.ts';
import { createCampaign, createTermList } from './db/campaigns.ts';
import { senderLoads } from './db/capacity.ts';
import type { FindingScope } from './db/findings.ts';
import { insertFollowup } from './db/followups.ts';
import { type Db, rows } from './db/open.ts';
import { advanceFollowups } from './followups.ts';
import { findingKey, isolateKey, screenKey } from './keys.ts';
import { extraPairs, materialiseDueRounds, planningLead, RoundPlanner } from './rounds.ts';
import { campaignWithoutRounds } from './test-support/censor.ts';
import { describeEachDb } from './test-support/db.ts';
import { account, checkin, signedPost, UNLIMITED_CAPACITY } from './test-support/probe.ts';
import { onAppWorld, type World } from './test-support/world.ts';

const capacity = (c: Partial<SendCapacity>): SendCapacity => ({
  pacing_min_ms: 0,
  pacing_max_ms: 0,
  per_minute: 1000,
  per_hour: 10_000,
  per_day: 100_000,
  remaining_minute: 1000,
  remaining_hour: 10_000,
  remaining_day: 100_000,
  queued: 0,
  ...c,
});

it('counts sends in a window from pacing, limits, budget and what is spoken for', () => {
  const at = new Date(0);
  const base = { reportedAt: at, sentSinceReport: 0, outstanding: 0 };
  // pacing: one send now and one per longest pause
  expect(sendsWithin({ ...base, capacity: capacity({ pacing_max_ms: 2000 }) }, 0, 7000)).toBe(4);
  // … plus how long a send itself takes lately (a slow client: 2 s pause + 1.5 s send)
  expect(sendsWithin({ ...base, capacity: capacity({ pacing_max_ms: 2000, send_ms: 1500 }) }, 0, 7000)).toBe(
    3,
  );
  expect(sendsWithin({ ...base, capacity: capacity({ pacing_max_ms: 0, send_ms: 400 }) }, 0, 3000)).toBe(8);
  // a sliding window allows what was left at the report, less what was sent since
  expect(sendsWithin({ ...base, capacity: capacity({ remaining_minute: 5 }) }, 0, 30_000)).toBe(5);
  expect(
    sendsWithin({ ...base, sentSinceReport: 2, capacity: capacity({ remaining_minute: 5 }) }, 0, 30_000),
  ).toBe(3);
  // … and is full again once a whole window passed since the report
  expect(
    sendsWithin({ ...base, capacity: capacity({ per_minute: 6, remaining_minute: 0 }) }, 61_000, 70_000),
  ).toBe(6);
  // the probe's daily budget
  expect(sendsWithin({ ...base, capacity: capacity({ budget_remaining: 3 }) }, 0, 60_000)).toBe(3);
  // no report: the probe's defaults (2–8 s pauses, 6 a minute)
  expect(sendsWithin({ sentSinceReport: 0, outstanding: 0 }, 0, 30_000)).toBe(4);
  expect(sendsWithin({ sentSinceReport: 0, outstanding: 0 }, 0, 7000)).toBe(1);
  expect(DEFAULT_CAPACITY.pacing_max_ms).toBe(8000);
  // what is planned and not sent, or queued at the probe, is taken off
  expect(budgetLeft({ ...base, outstanding: 3, capacity: capacity({ pacing_max_ms: 2000 }) }, 0, 7000)).toBe(
    1,
  );
  expect(
    budgetLeft({ ...base, outstanding: 1, capacity: capacity({ pacing_max_ms: 2000, queued: 4 }) }, 0, 7000),
  ).toBe(0);
});

it('plans an account that missed deadlines at the rate it showed, never below half its pacing', () => {
  const at = new Date(0);
  const fast = {
    reportedAt: at,
    sentSinceReport: 0,
    outstanding: 0,
    capacity: capacity({ pacing_max_ms: 500 }),
  };
  // pacing alone: one send now and one per 500 ms, 21 in 10 s
  expect(sendsWithin(fast, 0, 10_000)).toBe(21);
  // sent 60 a minute and missed none: its pacing stands
  expect(sendsWithin({ ...fast, recent: { sent: 60, missed: 0, spanMs: 60_000 } }, 0, 10_000)).toBe(21);
  // sent 90 a minute (15 in 10 s) and missed deadlines: what it showed, plus a pair
  expect(sendsWithin({ ...fast, recent: { sent: 90, missed: 40, spanMs: 60_000 } }, 0, 10_000)).toBe(17);
  // sent almost nothing: half its pacing, so that an account planned little is not planned less
  expect(sendsWithin({ ...fast, recent: { sent: 2, missed: 5, spanMs: 60_000 } }, 0, 10_000)).toBe(11);
  // a stray miss among many sends is no rate
  expect(sendsWithin({ ...fast, recent: { sent: 30, missed: 3, spanMs: 60_000 } }, 0, 10_000)).toBe(21);
  expect(sendsWithin({ ...fast, recent: { sent: 27, missed: 3, spanMs: 60_000 } }, 0, 10_000)).toBe(11);
  // never more than pacing allows
  expect(sendsWithin({ ...fast, recent: { sent: 600, missed: 1, spanMs: 60_000 } }, 0, 10_000)).toBe(21);
  // the limits still apply
  const limited = { ...fast, capacity: capacity({ pacing_max_ms: 500, remaining_minute: 5 }) };
  expect(sendsWithin({ ...limited, recent: { sent: 90, missed: 40, spanMs: 60_000 } }, 0, 10_000)).toBe(5);
});

it("moves a sender's canaries that would be due before its probe hears of them, keeping their spacing", () => {
  const c = (sender: string, sendMs: number) => ({
    senderAccountId: sender,
    sendAt: new Date(sendMs),
    deadlineAt: new Date(sendMs + 3000),
  });
  const heard: Record<string, number> = { a: 5000, b: 1000, c: 2500 };
  const moved = dueWhenHeard(
    [c('a', 1000), c('a', 1800), c('b', 2000), c('c', 2000), c('c', 4000)],
    (id) => heard[id] ?? 0,
  );
  const times = moved.map((m) => [m.senderAccountId, m.sendAt.getTime(), m.deadlineAt.getTime()]);
  expect(times).toEqual([
    // a hears at 5 s: its first canary is due then, the second 0.8 s later as planned
    ['a', 5000, 8000],
    ['a', 5800, 8800],
    // b hears before its canary is due: unchanged
    ['b', 2000, 5000],
    // c hears 0.5 s after its first canary was due: both move by 0.5 s
    ['c', 2500, 5500],
    ['c', 4500, 7500],
  ]);
  // nothing to move: the same objects
  const onTime = [c('b', 1500)];
  expect(dueWhenHeard(onTime, () => 1000)[0]).toBe(onTime[0]);
});

it('tops a scope up to what its first look needs, or a quarter of its pairs, in flight', () => {
  // a new scope: the 4 pairs its first look needs, less what is in flight
  expect(extraPairs(0, 1)).toBe(3);
  expect(extraPairs(0, 4)).toBe(0);
  // after its first looks: a quarter of what it has seen in flight, at least the round's one
  expect(extraPairs(4, 1)).toBe(0);
  expect(extraPairs(15, 1)).toBe(2);
  // deep into the test: up to 10 of 40 in flight, less what already is
  expect(extraPairs(40, 1)).toBe(9);
  expect(extraPairs(40, 7)).toBe(3);
  expect(extraPairs(40, 12)).toBe(0);
  // never past the design's last look (80 pairs)
  expect(extraPairs(78, 1)).toBe(1);
  expect(extraPairs(79, 1)).toBe(0);
  expect(extraPairs(70, 1, { minPairs: 4, maxPairs: 72 })).toBe(1);
});

/** New accounts `us-…` (US) and `cn-…` (CN) in a group of their own. */
function twoInAGroup(prefix: string) {
  const tag = randomUUID().slice(0, 8);
  const us = `us-${tag}`;
  const cn = `cn-${tag}`;
  const group = { platform: 'testbed', ref: `${prefix}-${tag}`, kind: 'group' as const, members: [us, cn] };
  return { tag, us, cn, group };
}

/**
 * An isolate campaign of `termSets` over `refs` with rounds every 10 s (sends spread over 5 s) and
 * a 30-s deadline: the next round begins while the last one's pairs are still in flight.
 */
async function slowDeadlineCampaign(db: Db, name: string, termSets: string[][], refs: string[]) {
  const list = await createTermList(db, { name, termSets });
  const t0 = Math.ceil(Date.now() / 10_000) * 10_000 + 20_000;
  const campaign = await createCampaign(db, {
    name,
    mode: 'isolate',
    termListIds: list ? [list.id] : [],
    conversations: { platform: 'testbed', refs },
    cadenceCron: '*/10 * * * * *',
    deadlineSeconds: 30,
    termSetsPerRound: 10,
    seed: name,
    startsAt: new Date(t0 - 500),
    endsAt: null,
  });
  return { campaign, t0 };
}

/** A sequential state as if the term set's looks in `scope` had seen `pairs` pairs. */
async function seenPairs(
  db: Db,
  campaignId: string,
  termSet: readonly string[],
  scope: FindingScope,
  pairs: number,
) {
  await db.execute(sql`insert into sequential_states (campaign_id, key, term_set, scope, state)
    values (${campaignId}::uuid, ${findingKey(termSet, scope)}, ${sql.param([...termSet])}::text[],
            ${JSON.stringify(scope)}::jsonb,
            ${JSON.stringify({ looks: 5, alphaSpent: 0, betaSpent: 0, lastPairs: pairs })}::jsonb)`);
}

/** The testbed scope of `kind` conversations from `from` to `to`. */
function testbedScope(kind: 'direct' | 'group', from: string, to: string): FindingScope {
  return { platform: 'testbed', conversation_kind: kind, sender_region: from, recipient_region: to };
}

/** A round's test canaries, counted per sender, conversation and term set. */
async function roundTests(db: Db, campaignId: string, roundAt: number) {
  return rows<{ handle: string; region: string; ref: string; termSet: string[]; n: number }>(
    db,
    sql`select a.handle, a.region, cv.ref, c.term_set as "termSet", count(*)::int as n from canaries c
        join rounds r on r.id = c.round_id join accounts a on a.id = c.sender_account_id
        join conversations cv on cv.id = c.conversation_id
        where c.campaign_id = ${campaignId}::uuid and c.kind = 'test'
          and r.round_at = ${new Date(roundAt).toISOString()}::timestamptz
        group by 1, 2, 3, 4`,
  );
}

/** The counts `n` summed per `key`. */
function tally<T extends { n: number }>(found: readonly T[], key: (f: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of found) out[key(f)] = (out[key(f)] ?? 0) + f.n;
  return out;
}

describeEachDb('rounds within the send budget', (getDb) => {
  let app: FastifyInstance;
  let w: World;

  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
  });

  it('rounds never plan more canaries than the senders can send before the deadline', async () => {
    const { db } = getDb();
    const { alice, bob, carol } = w.handles;
    // the group plus three direct chats
    const direct = [
      [alice, bob],
      [alice, carol],
      [bob, carol],
    ].map((members, i) => ({
      platform: 'testbed',
      ref: `${w.group}-direct-${i}`,
      kind: 'direct' as const,
      members,
    }));
    const convs = [
      { platform: 'testbed', ref: w.group, kind: 'group' as const, members: [alice, bob, carol] },
      ...direct,
    ];
    // alice: a send every 2 s at most; bob: every 5 s; carol: no report (the probe defaults)
    await checkin(
      app,
      w.us,
      [
        {
          ...account('testbed', alice, 'US'),
          capacity: capacity({ pacing_min_ms: 500, pacing_max_ms: 2000 }),
        },
      ],
      convs.filter((c) => c.members.includes(alice)),
    );
    await checkin(
      app,
      w.cn,
      [
        {
          ...account('testbed', bob, 'CN'),
          capacity: capacity({ pacing_min_ms: 1000, pacing_max_ms: 5000 }),
        },
        account('testbed', carol, 'AU'),
      ],
      convs.filter((c) => c.members.includes(bob) || c.members.includes(carol)),
    );
    const stored = await rows<{ handle: string; capacity: SendCapacity | null }>(
      db,
      sql`select handle, capacity from accounts where handle = any(${sql.param([alice, bob, carol])}::text[])`,
    );
    expect(Object.fromEntries(stored.map((s) => [s.handle, s.capacity?.pacing_max_ms ?? null]))).toEqual({
      [alice]: 2000,
      [bob]: 5000,
      [carol]: null,
    });

    const termSets = Array.from({ length: 40 }, (_, i) => [`词${String.fromCharCode(0x4e00 + i * 7)}语`]);
    const list = await createTermList(db, { name: `budget-${w.group}`, termSets });
    // a round every 4 s, sends spread over 2 s, deadline 5 s: each round's window is 7 s
    const t0 = Math.ceil(Date.now() / 4000) * 4000 + 8000;
    const campaign = await createCampaign(db, {
      name: `budget-${w.group}`,
      mode: 'isolate',
      termListIds: list ? [list.id] : [],
      conversations: { platform: 'testbed', refs: convs.map((c) => c.ref) },
      cadenceCron: '*/4 * * * * *',
      deadlineSeconds: 5,
      termSetsPerRound: 40,
      seed: `budget-${w.group}`,
      startsAt: new Date(t0 - 500),
      endsAt: null,
    });
    const planned = async (roundAt: number) => {
      const found = await rows<{ handle: string; n: number }>(
        db,
        sql`select a.handle, count(*)::int as n from canaries c
            join rounds r on r.id = c.round_id join accounts a on a.id = c.sender_account_id
            where c.campaign_id = ${campaign.id}::uuid and r.round_at = ${new Date(roundAt).toISOString()}::timestamptz
            group by a.handle`,
      );
      const by = Object.fromEntries(found.map((f) => [f.handle, f.n]));
      return { alice: by[alice] ?? 0, bob: by[bob] ?? 0, carol: by[carol] ?? 0 };
    };
    const round = async (at: number) => {
      await materialiseDueRounds(db, new Date(at), 1);
      // This campaign's round only: the world's own campaign (hourly, no term sets) has a round
      // of its own when `at` falls on the hour.
      const [made] = await rows<{ n: number }>(
        db,
        sql`select count(*)::int as n from rounds
            where campaign_id = ${campaign.id}::uuid and round_at = ${new Date(at).toISOString()}::timestamptz`,
      );
      expect(made?.n).toBe(1);
      return planned(at);
    };

    // Round 1: 40 sets × 4 conversations would be hundreds of canaries; alice can send 4 in 7 s
    // (one now, one every 2 s), bob 2, carol (defaults: 8 s pauses) not even a pair.
    expect(await round(t0)).toEqual({ alice: 4, bob: 2, carol: 0 });
    // Round 2, nothing reported sent: round 1's canaries still claim every send of the window.
    expect(await round(t0 + 4000)).toEqual({ alice: 0, bob: 0, carol: 0 });
    // alice's probe reports what became of her canaries
    const report = (
      events: ({ canary: { id: string; ref: string; sendAt: string } } & Record<string, unknown>)[],
    ) =>
      signedPost(app, w.us, '/probe/v1/events', {
        protocol: 1,
        events: events.map(({ canary: c, ...e }) => ({
          ...e,
          event_id: randomUUID(),
          platform: 'testbed',
          account: alice,
          conversation: c.ref,
          at: new Date(c.sendAt).toISOString(),
          clock_offset_ms: 0,
          adapter: { name: 'testbed', version: '0.0.1' },
          canary_id: c.id,
        })),
      });
    // alice's probe reports round 1's sends; bob's stay pending
    const mine = await rows<{ id: string; text: string; ref: string; sendAt: string }>(
      db,
      sql`select c.id, c.text, cv.ref, c.send_at as "sendAt" from canaries c
          join conversations cv on cv.id = c.conversation_id
          where c.campaign_id = ${campaign.id}::uuid and c.sender_account_id = ${w.accountIds.alice}::uuid`,
    );
    const res = await report(mine.map((c) => ({ type: 'sent', text: c.text, canary: c })));
    expect(res.statusCode, res.body).toBe(200);
    // Round 3 (window from t0 + 8 s): alice has her budget back; bob's round-1 canaries are
    // past their deadlines by then, so they no longer claim his sends.
    expect(await round(t0 + 8000)).toEqual({ alice: 4, bob: 2, carol: 0 });
    // Round 4 overlaps round 3, whose canaries are not sent: nothing more.
    expect(await round(t0 + 12_000)).toEqual({ alice: 0, bob: 0, carol: 0 });
    // alice's probe sends one of round 3's canaries and gives the others up, past their deadline:
    // it sends slower than its pacing says. Round 5 (window from t0 + 16 s) plans her at the rate
    // she showed in the minute before (5 sent: 1 in 7 s, plus a pair), not 4.
    const round3 = await rows<{ id: string; text: string; ref: string; sendAt: string }>(
      db,
      sql`select c.id, c.text, cv.ref, c.send_at as "sendAt" from canaries c
          join conversations cv on cv.id = c.conversation_id join rounds r on r.id = c.round_id
          where c.campaign_id = ${campaign.id}::uuid and c.sender_account_id = ${w.accountIds.alice}::uuid
            and r.round_at = ${new Date(t0 + 8000).toISOString()}::timestamptz
          order by c.send_at`,
    );
    expect(round3).toHaveLength(4);
    const late = await report(
      round3.map((c, i) =>
        i === 0
          ? { type: 'sent', text: c.text, canary: c }
          : { type: 'failed', failure: 'deadline_missed', detail: 'held past its deadline', canary: c },
      ),
    );
    expect(late.statusCode, late.body).toBe(200);
    const loads = await senderLoads(
      db,
      [w.accountIds.alice, w.accountIds.bob],
      new Date(t0 + 16_000),
      new Date(t0 + 23_000),
    );
    expect(loads.get(w.accountIds.alice)?.recent).toEqual({ sent: 5, missed: 3, spanMs: 60_000 });
    expect(loads.get(w.accountIds.bob)?.recent).toEqual({ sent: 0, missed: 0, spanMs: 60_000 });
    expect(await round(t0 + 16_000)).toEqual({ alice: 2, bob: 2, carol: 0 });

    // Per account and round window [round_at, round_at + 2 s + 5 s]: the canaries planned up to
    // that round that compete for it never exceed what the account can send in it.
    const limit = { [alice]: 4, [bob]: 2, [carol]: 1 };
    const overlaps = await rows<{ roundAt: string; handle: string; n: number }>(
      db,
      sql`select r.round_at as "roundAt", a.handle, count(*)::int as n
          from rounds r
          join canaries c on c.campaign_id = r.campaign_id
            and c.deadline_at > r.round_at and c.send_at < r.round_at + interval '7 seconds'
          join rounds rc on rc.id = c.round_id and rc.round_at <= r.round_at
          join accounts a on a.id = c.sender_account_id
          where r.campaign_id = ${campaign.id}::uuid
          group by 1, 2`,
    );
    expect(overlaps.length).toBeGreaterThan(0);
    for (const o of overlaps)
      expect(o.n, `${o.handle} at ${o.roundAt}`).toBeLessThanOrEqual(limit[o.handle] ?? 0);
  });

  it('campaigns that share accounts take turns at their send budget', async () => {
    const { db } = getDb();
    const { tag, us, cn, group } = twoInAGroup('shared');
    const fast = capacity({ pacing_min_ms: 500, pacing_max_ms: 2000 });
    await checkin(app, w.us, [{ ...account('testbed', us, 'US'), capacity: fast }], [group]);
    await checkin(app, w.cn, [{ ...account('testbed', cn, 'CN'), capacity: fast }], [group]);
    // A round every 10 s, sends spread over 5 s, deadline 2 s: a round's window is 7 s and the
    // last round's canaries are past their deadlines when the next begins. Each account can
    // send 4 in it: one campaign's two sets (a pair per sender each), never both campaigns'.
    const t0 = Math.ceil(Date.now() / 10_000) * 10_000 + 20_000;
    const names = ['first', 'second'];
    const ids: string[] = [];
    for (const name of names) {
      const list = await createTermList(db, {
        name: `shared-${name}-${tag}`,
        termSets: [[`${name}甲`], [`${name}乙`]],
      });
      const c = await createCampaign(db, {
        name: `shared-${name}-${tag}`,
        mode: 'isolate',
        termListIds: list ? [list.id] : [],
        conversations: { platform: 'testbed', refs: [group.ref] },
        cadenceCron: '*/10 * * * * *',
        deadlineSeconds: 2,
        termSetsPerRound: 10,
        seed: `shared-${name}-${tag}`,
        startsAt: new Date(t0 - 500),
        endsAt: null,
      });
      ids.push(c.id);
    }
    const rounds = 16;
    for (let i = 0; i < rounds; i++) await materialiseDueRounds(db, new Date(t0 + i * 10_000), 1);
    const found = await rows<{ roundAt: string; campaign: string; n: number }>(
      db,
      sql`select r.round_at as "roundAt", r.campaign_id as campaign, count(c.id)::int as n
          from rounds r left join canaries c on c.round_id = r.id
          where r.campaign_id = any(${sql.param(ids)}::uuid[])
          group by 1, 2`,
    );
    const byRound = new Map<number, Record<string, number>>();
    for (const f of found) {
      const at = new Date(f.roundAt).getTime();
      byRound.set(at, { ...byRound.get(at), [f.campaign]: f.n });
    }
    expect(byRound.size).toBe(rounds);
    // every round: one campaign takes the whole budget (8 canaries), the other gets nothing
    const taker = [...byRound.values()].map((r) => {
      const n = ids.map((id) => r[id] ?? 0);
      expect(n.slice().sort()).toEqual([0, 8]);
      return n[0] ? 'first' : 'second';
    });
    // and it is not always the same one (the order is drawn per round: both take turns)
    expect(new Set(taker), taker.join(' ')).toEqual(new Set(names));
  });

  it('spends budget left after one pair per open set on the scopes deep into their sequential test', async () => {
    const { db } = getDb();
    const { tag, us, cn, group } = twoInAGroup('deep');
    // us: a send every 0.1 s at most (hundreds in a round's window); cn: every 5 s, 8 in 35 s
    await checkin(
      app,
      w.us,
      [{ ...account('testbed', us, 'US'), capacity: capacity({ pacing_max_ms: 100 }) }],
      [group],
    );
    await checkin(
      app,
      w.cn,
      [{ ...account('testbed', cn, 'CN'), capacity: capacity({ pacing_max_ms: 5000 }) }],
      [group],
    );
    const [deep, fresh, last] = [['深甲'], ['深乙'], ['深丙']];
    const { campaign, t0 } = await slowDeadlineCampaign(db, `deep-${tag}`, [deep, fresh, last], [group.ref]);
    // the sequential looks so far: `deep` has seen 40 pairs in both directions, `last` 78 (two
    // short of the design's last look at 80), `fresh` none
    for (const [terms, seen] of [
      [deep, 40],
      [last, 78],
    ] as const) {
      for (const [from, to] of [
        ['US', 'CN'],
        ['CN', 'US'],
      ] as const) {
        await seenPairs(db, campaign.id, terms, testbedScope('group', from, to), seen);
      }
    }
    const pairsOf = async (roundAt: number) => {
      await materialiseDueRounds(db, new Date(roundAt), 1);
      return tally(
        await roundTests(db, campaign.id, roundAt),
        (f) => `${f.handle === us ? 'us' : 'cn'} ${f.termSet.join('+')}`,
      );
    };
    // Round 1: every open set gets its pair per sender region first. Then what is left: `last`
    // (closest to a decision) up to its 80th pair, `deep` up to a quarter of its 40 pairs in
    // flight, `fresh` the 4 its first look needs. cn's 8 sends go to the three first pairs and
    // one more of `last`.
    expect(await pairsOf(t0)).toEqual({
      'us 深甲': 10,
      'us 深乙': 4,
      'us 深丙': 2,
      'cn 深甲': 1,
      'cn 深乙': 1,
      'cn 深丙': 2,
    });
    // Round 2, round 1's pairs still in flight: one pair per open set from us, as before; cn's
    // sends are all spoken for.
    expect(await pairsOf(t0 + 10_000)).toEqual({ 'us 深甲': 1, 'us 深乙': 1, 'us 深丙': 1 });
  });

  it('counts pairs in flight per scope, over every conversation that reaches it', async () => {
    const { db } = getDb();
    const tag = randomUUID().slice(0, 8);
    const [us1, us2, cn1, cn2] = [`us1-${tag}`, `us2-${tag}`, `cn1-${tag}`, `cn2-${tag}`];
    // two direct chats US↔CN: both reach the scopes US→CN and CN→US
    const chats = [
      [us1, cn1],
      [us2, cn2],
    ].map((members, i) => ({
      platform: 'testbed',
      ref: `two-${tag}-${i}`,
      kind: 'direct' as const,
      members,
    }));
    const fast = capacity({ pacing_max_ms: 100 });
    await checkin(
      app,
      w.us,
      [us1, us2].map((h) => ({ ...account('testbed', h, 'US'), capacity: fast })),
      chats,
    );
    await checkin(
      app,
      w.cn,
      [cn1, cn2].map((h) => ({ ...account('testbed', h, 'CN'), capacity: fast })),
      chats,
    );
    const { campaign, t0 } = await slowDeadlineCampaign(
      db,
      `two-${tag}`,
      [['二甲']],
      chats.map((c) => c.ref),
    );
    // US→CN has seen 40 pairs (10 may be in flight), CN→US none (its first look needs 4)
    await seenPairs(db, campaign.id, ['二甲'], testbedScope('direct', 'US', 'CN'), 40);
    const perChat = async (roundAt: number) => {
      await materialiseDueRounds(db, new Date(roundAt), 1);
      const found = await roundTests(db, campaign.id, roundAt);
      const by = (region: string) =>
        Object.values(
          tally(
            found.filter((f) => f.region === region),
            (f) => f.ref,
          ),
        );
      return { us: by('US'), cn: by('CN') };
    };
    // each chat gets its pair per sender; the extras fill each scope's window once, not per chat
    const first = await perChat(t0);
    expect(first.us).toHaveLength(2);
    expect(first.cn).toHaveLength(2);
    expect(first.us.reduce((a, b) => a + b)).toBe(10);
    expect(first.cn.reduce((a, b) => a + b)).toBe(4);
    // the next round, round 1's pairs in flight: the first pass only
    expect(await perChat(t0 + 10_000)).toEqual({ us: [1, 1], cn: [1, 1] });
  });

  it("tops up within the sweep's own sequential design, counting pairs in flight till its grace has passed", async () => {
    const { db } = getDb();
    const { tag, us, cn, group } = twoInAGroup('own');
    const fast = capacity({ pacing_max_ms: 100 });
    await checkin(app, w.us, [{ ...account('testbed', us, 'US'), capacity: fast }], [group]);
    await checkin(app, w.cn, [{ ...account('testbed', cn, 'CN'), capacity: fast }], [group]);
    const { campaign, t0 } = await slowDeadlineCampaign(db, `own-${tag}`, [['自甲']], [group.ref]);
    // US→CN has seen 40 pairs, CN→US none
    await seenPairs(db, campaign.id, ['自甲'], testbedScope('group', 'US', 'CN'), 40);
    // the sweep looks first at 8 pairs and last at 42, and judges a pair 120 s after its deadline
    const findings = { design: { minPairs: 8, maxPairs: 42 }, graceMs: 120_000 };
    const perRegion = async (roundAt: number) => {
      await materialiseDueRounds(db, new Date(roundAt), 1, undefined, findings);
      return tally(await roundTests(db, campaign.id, roundAt), (f) => f.region);
    };
    // US→CN: two pairs short of the last look at 42 (the default design would give 10); CN→US:
    // the 8 its first look needs (the default, 4)
    expect(await perRegion(t0)).toEqual({ US: 2, CN: 8 });
    // 100 s on, round 1's deadlines passed 65 s ago or more: past twice the deadline (60 s), but
    // the sweep's grace has not yet passed, so they are still in flight: the first pass only
    expect(await perRegion(t0 + 100_000)).toEqual({ US: 1, CN: 1 });
  });

  it("follow-up steps are due when their sender's probe next checks in, and hears of them", async () => {
    const { db } = getDb();
    const { tag, us, cn, group } = twoInAGroup('iso');
    const lastCheckin = async () =>
      (
        await rows<{ at: string; gap: number | null }>(
          db,
          sql`select last_checkin_at as at, checkin_gap_ms as gap from probes where id = ${w.us.id}::uuid`,
        )
      )[0];
    await checkin(app, w.cn, [{ ...account('testbed', cn, 'CN'), capacity: UNLIMITED_CAPACITY }], [group]);
    await checkin(app, w.us, [{ ...account('testbed', us, 'US'), capacity: UNLIMITED_CAPACITY }], [group]);
    const first = await lastCheckin();
    await new Promise((r) => setTimeout(r, 30));
    await checkin(app, w.us, [{ ...account('testbed', us, 'US'), capacity: UNLIMITED_CAPACITY }], [group]);
    // the collector keeps the gap between a probe's last two check-ins
    const second = await lastCheckin();
    expect(second?.gap).toBe(Date.parse(second?.at ?? '') - Date.parse(first?.at ?? ''));
    expect(second?.gap).toBeGreaterThanOrEqual(30);

    const campaign = await campaignWithoutRounds(db, `iso-${tag}`, [['甲', '乙', '丙']], [group.ref]);
    const scope = testbedScope('group', 'US', 'CN');
    const seen = new Set<string>();
    /** The first send time of the canaries a new isolation step planned, ms after `now`. */
    const stepAt = async (terms: string[], probe: { lastMsAgo: number; gapMs: number | null }) => {
      const now = Date.now();
      await db.execute(sql`update probes set
          last_checkin_at = ${new Date(now - probe.lastMsAgo).toISOString()}::timestamptz,
          checkin_gap_ms = ${probe.gapMs}::int
        where id = ${w.us.id}::uuid`);
      await insertFollowup(db, {
        campaignId: campaign.id,
        procedure: 'isolate',
        input: terms,
        scope,
        key: isolateKey(terms, scope),
      });
      await advanceFollowups(db, new Date(now), { checkinIntervalMs: 5000 });
      const made = (
        await rows<{ id: string; sendAt: string; sender: string }>(
          db,
          sql`select c.id, c.send_at as "sendAt", a.handle as sender from canaries c
              join accounts a on a.id = c.sender_account_id
              where c.campaign_id = ${campaign.id}::uuid and c.round_id is null`,
        )
      ).filter((c) => !seen.has(c.id));
      for (const c of made) seen.add(c.id);
      expect(made.length).toBeGreaterThan(0);
      expect(new Set(made.map((c) => c.sender))).toEqual(new Set([us]));
      return Math.min(...made.map((c) => Date.parse(c.sendAt))) - now;
    };
    // (each message is placed at random in the second its sender's share of the window gives it)
    const within = (ms: number, from: number) => {
      expect(ms).toBeGreaterThanOrEqual(from);
      expect(ms).toBeLessThan(from + 1000);
    };
    // checked in 0.5 s ago, every 2 s: it hears of the step in 1.5 s, and its messages are due then
    within(await stepAt(['甲', '乙', '丙'], { lastMsAgo: 500, gapMs: 2000 }), 1500);
    // no gap known yet: the collector's interval (5 s) after the last check-in
    within(await stepAt(['丁', '戊', '己'], { lastMsAgo: 500, gapMs: null }), 4500);
    // a probe slower than the interval the collector asks for: its own gap (checks in 7 s apart)
    within(await stepAt(['卯', '辰', '巳'], { lastMsAgo: 1000, gapMs: 7000 }), 6000);
    // a gap longer than three intervals is an outage, not a rhythm: three intervals
    within(await stepAt(['庚', '辛', '壬'], { lastMsAgo: 1000, gapMs: 60_000 }), 14_000);
    // past its time: it may come any moment, so the step is due at once
    within(await stepAt(['子', '丑', '寅'], { lastMsAgo: 10_000, gapMs: 2000 }), 0);
  });

  it('spreads a follow-up step over the shortest whole second that holds it, not the next power of two', async () => {
    const { db } = getDb();
    const { tag, us, cn, group } = twoInAGroup('spread');
    // one send every 3 s: with the 3-s deadline, a window of s seconds holds floor((s + 3) / 3) + 1
    const slow = capacity({ pacing_max_ms: 3000 });
    await checkin(app, w.cn, [{ ...account('testbed', cn, 'CN'), capacity: UNLIMITED_CAPACITY }], [group]);
    await checkin(app, w.us, [{ ...account('testbed', us, 'US'), capacity: slow }], [group]);
    // 150 sets of one 40-character term: a screen's first step packs them into a dozen messages
    const sets = Array.from({ length: 150 }, (_, i) => [`t${String(i).padStart(3, '0')}${'x'.repeat(36)}`]);
    const campaign = await campaignWithoutRounds(db, `spread-${tag}`, sets, [group.ref]);
    const scope = testbedScope('group', 'US', 'CN');
    await insertFollowup(db, {
      campaignId: campaign.id,
      procedure: 'screen',
      input: sets,
      scope,
      key: screenKey(scope),
    });
    await advanceFollowups(db, new Date(), { checkinIntervalMs: 5000 });
    const made = await rows<{ sendAt: string; kind: string }>(
      db,
      sql`select send_at as "sendAt", kind from canaries where campaign_id = ${campaign.id}::uuid`,
    );
    const n = made.filter((c) => c.kind === 'test').length;
    expect(n).toBeGreaterThan(10);
    // n packs and a shared control per ten: the shortest window that holds them (a power of two
    // would be up to twice as long); message k of n starts k/n into it, within its own second
    expect(made).toHaveLength(n + Math.ceil(n / 10));
    let needed = 1;
    while (Math.floor((needed + 3) / 3) + 1 < made.length) needed++;
    expect(needed & (needed - 1)).not.toBe(0);
    const at = made.map((c) => Date.parse(c.sendAt));
    const last = ((n - 1) / n) * needed * 1000;
    expect(Math.max(...at) - Math.min(...at)).toBeGreaterThan(last - 1000);
    expect(Math.max(...at) - Math.min(...at)).toBeLessThan(last + 1000);
  });

  /**
   * A US and a CN account in a group, both checked in, and an `isolate` campaign on `termSets` in
   * it: rounds every 10 s (sends spread over 5 s, a 3-s deadline), the first at `roundAt`, 20-30 s
   * from now; the campaign starts `startsBeforeMs` before it.
   */
  const roundsEvery10s = async (prefix: string, termSets: string[][], startsBeforeMs: number) => {
    const { db } = getDb();
    const { tag, us, cn, group } = twoInAGroup(prefix);
    await checkin(app, w.us, [{ ...account('testbed', us, 'US'), capacity: UNLIMITED_CAPACITY }], [group]);
    await checkin(app, w.cn, [{ ...account('testbed', cn, 'CN'), capacity: UNLIMITED_CAPACITY }], [group]);
    const list = await createTermList(db, { name: `${prefix}-${tag}`, termSets });
    const roundAt = Math.ceil(Date.now() / 10_000) * 10_000 + 20_000;
    const campaign = await createCampaign(db, {
      name: `${prefix}-${tag}`,
      mode: 'isolate',
      termListIds: list ? [list.id] : [],
      conversations: { platform: 'testbed', refs: [group.ref] },
      cadenceCron: '*/10 * * * * *',
      deadlineSeconds: 3,
      termSetsPerRound: 10,
      seed: `${prefix}-${tag}`,
      startsAt: new Date(roundAt - startsBeforeMs),
      endsAt: null,
    });
    return { roundAt, campaign };
  };

  it("a round planned late is due when its senders' probes hear of it, not before", async () => {
    const { db } = getDb();
    const { roundAt, campaign } = await roundsEvery10s('late', [['晚甲'], ['晚乙']], 500);
    /** The US probe checked in `lastMsAgo` before `now` and checks in every 2 s. */
    const usCheckedIn = (now: number, lastMsAgo: number) =>
      db.execute(sql`update probes set
          last_checkin_at = ${new Date(now - lastMsAgo).toISOString()}::timestamptz, checkin_gap_ms = 2000
        where id = ${w.us.id}::uuid`);
    const planned = async (at: number) =>
      rows<{ region: string; sendAt: string; deadlineAt: string }>(
        db,
        sql`select a.region, c.send_at as "sendAt", c.deadline_at as "deadlineAt" from canaries c
            join rounds r on r.id = c.round_id join accounts a on a.id = c.sender_account_id
            where c.campaign_id = ${campaign.id}::uuid
              and r.round_at = ${new Date(at).toISOString()}::timestamptz`,
      );
    const first = (found: { region: string; sendAt: string }[], region: string) =>
      Math.min(...found.filter((f) => f.region === region).map((f) => Date.parse(f.sendAt)));

    // Planned 6 s late (every send of the round was due by then), with a 10-s check-in interval;
    // the US probe checked in 0.5 s ago and comes every 2 s; the CN probe last checked in when
    // the test began, over 20 s ago: past its time, it may come any moment.
    const late = roundAt + 6000;
    await usCheckedIn(late, 500);
    await materialiseDueRounds(db, new Date(late), 10_000);
    const found = await planned(roundAt);
    expect(new Set(found.map((f) => f.region))).toEqual(new Set(['US', 'CN']));
    // the US sender's first canary is due at its probe's next check-in, 1.5 s from now
    expect(first(found, 'US')).toBe(late + 1500);
    // the CN probe may hear of the plan once it is stored, and its canaries are due then
    expect(first(found, 'CN')).toBeGreaterThanOrEqual(late);
    expect(first(found, 'CN')).toBeLessThan(late + 2000);
    // none is due before now, and each keeps its 3-s deadline
    for (const f of found) {
      expect(Date.parse(f.sendAt)).toBeGreaterThanOrEqual(late);
      expect(Date.parse(f.deadlineAt) - Date.parse(f.sendAt)).toBe(3000);
    }

    // The next round, planned 4 s ahead: the US probe hears of it 2.5 s before it is due, and
    // its sends keep the round's times (within the round's 5-s spread).
    const next = roundAt + 10_000;
    await usCheckedIn(next - 4000, 500);
    await materialiseDueRounds(db, new Date(next - 4000), 10_000);
    const onTime = (await planned(next)).filter((f) => f.region === 'US');
    expect(onTime.length).toBeGreaterThan(0);
    for (const f of onTime) {
      expect(Date.parse(f.sendAt)).toBeGreaterThanOrEqual(next);
      expect(Date.parse(f.sendAt)).toBeLessThan(next + 5000);
    }
  });

  it('plans a round before its horizon by the lead, and one planning at a time', async () => {
    const { db } = getDb();
    // the planner's clock is 7 s before a round, with a 5-s horizon
    const { roundAt, campaign } = await roundsEvery10s('lead', [['先甲'], ['先乙']], 9500);
    const roundsOf = async () =>
      (
        await rows<{ n: number }>(
          db,
          sql`select count(*)::int as n from rounds where campaign_id = ${campaign.id}::uuid`,
        )
      )[0]?.n;
    const now = new Date(roundAt - 7000);
    // 2 s past the horizon: not due without a lead, due with a lead of 2 s
    expect((await materialiseDueRounds(db, now, 5000)).rounds).toBe(0);
    expect((await materialiseDueRounds(db, now, 5000, undefined, {}, { leadMs: 1999 })).rounds).toBe(0);
    expect(await roundsOf()).toBe(0);
    const led = await materialiseDueRounds(db, now, 5000, undefined, {}, { leadMs: 2000 });
    expect(led.rounds).toBe(1);
    expect(led.slowestMs).toBeGreaterThan(0);
    expect(await roundsOf()).toBe(1);

    // The planner: a check-in that comes while a planning runs does not plan beside it.
    const planner = new RoundPlanner(db, 5000);
    expect(planner.leadMs).toBe(0);
    const later = new Date(roundAt + 10_000 - 4000);
    const first = planner.plan(later);
    const second = planner.plan(later);
    expect(await second).toBeNull();
    // (the planner plans every active campaign: the previous test's, every 10 s too, may have a
    // round due by then as well, depending on where the clock fell; count this campaign's)
    expect((await first)?.rounds).toBeGreaterThanOrEqual(1);
    expect(await roundsOf()).toBe(2);
    // it leads by how long that planning took, and is free for the next check-in
    expect(planner.leadMs).toBeGreaterThan(0);
    expect(await planner.plan(later)).not.toBeNull();
    expect(await roundsOf()).toBe(2);
  });

  it('leads planning by the longest of the last few plannings, at most one horizon', () => {
    expect(planningLead([], 5000)).toBe(0);
    expect(planningLead([1200.2, 300], 5000)).toBe(1201);
    // the last five count: an old slow planning is forgotten
    expect(planningLead([4000, 100, 200, 300, 400, 500], 5000)).toBe(500);
    expect(planningLead([9000], 5000)).toBe(5000);
  });

  it('tells when a probe hears of a canary planned now', () => {
    const at = (ms: number) => new Date(ms);
    const p = { lastCheckinAt: at(0), gapMs: 2000 };
    expect(nextCheckin(undefined, 1000, 1000, 5000)).toBe(1000);
    expect(nextCheckin(p, 500, 500, 5000)).toBe(2000);
    // the plan commits after the next check-in: the one after it hears of it
    expect(nextCheckin(p, 500, 2300, 5000)).toBe(4000);
    // no gap yet: the interval the collector asks for
    expect(nextCheckin({ lastCheckinAt: at(0) }, 500, 500, 5000)).toBe(5000);
    // a probe that keeps a longer gap (its check-ins take long, it is busy) comes at its gap…
    expect(nextCheckin({ lastCheckinAt: at(0), gapMs: 9000 }, 500, 500, 5000)).toBe(9000);
    // … up to three intervals: longer is an outage
    expect(nextCheckin({ lastCheckinAt: at(0), gapMs: 60_000 }, 500, 500, 5000)).toBe(15_000);
    // past its time: any moment
    expect(nextCheckin(p, 3000, 3200, 5000)).toBe(3200);
    // no interval (probes that hear at once, as in the simulated tests)
    expect(nextCheckin(p, 500, 500, 0)).toBe(500);
    // a last check-in ahead of the planner's clock is never more than an interval away
    expect(nextCheckin({ lastCheckinAt: at(10_000), gapMs: 2000 }, 0, 0, 5000)).toBe(5000);
  });
});
