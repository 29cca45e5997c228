/**
 * The `screen` campaign mode end to end, through real ingest: twelve listed term sets, of which
 * the censor (this test) drops `六四` and any message carrying both 709 and 律师 for CN
 * recipients. The listed sets are packed into messages by one screen per scope instead of
 * being sent one per message: sets a screen clears get a settled `none` finding from the
 * screen, `六四` and `709 + 律师 + 天气预报` are left to the rounds (and to isolation, which
 * derives `709 + 律师`), and no innocent set is ever sent on its own.
 */
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { expect, it } from 'vitest';
import type { FindingsResponse } from '../protocol/index.ts';
import { takeDueCanaries } from './db/canaries.ts';
import { derivedTermSets, findingsOfCampaign } from './db/findings.ts';
import { followupSteps, insertFollowup } from './db/followups.ts';
import { rows } from './db/open.ts';
import { advanceFollowups } from './followups.ts';
import { screenKey, termSetKey } from './keys.ts';
import { finaliseOutcomes } from './outcomes.ts';
import {
  campaignWithoutRounds,
  type DueCanary,
  lastDeadlineOf,
  reportDeliveries,
  simulatedCampaign,
} from './test-support/censor.ts';
import { describeEachDb } from './test-support/db.ts';
import { onAppWorld, type World } from './test-support/world.ts';

const INNOCENT = [
  '图书馆',
  '火车站',
  '音乐会',
  '电影院',
  '足球赛',
  '医院',
  '公园',
  '咖啡馆',
  '博物馆',
  '动物园',
];
const LISTED = [['六四'], ['709', '律师', '天气预报'], ...INNOCENT.map((t) => [t])];

/** A group-chat scope on the testbed from one region to another. */
const scope = (sender: string, recipient: string) => ({
  platform: 'testbed',
  conversation_kind: 'group' as const,
  sender_region: sender,
  recipient_region: recipient,
});

describeEachDb('screen mode end to end', (getDb) => {
  let app: FastifyInstance;
  let w: World;

  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
  });

  it("sends a screen step's packs with a shared control for every ten a sender sends, void only when most fail", async () => {
    const { db } = getDb();
    // 150 sets of one 40-character term each: packs of 600 characters hold 13 of them
    const sets = Array.from({ length: 150 }, (_, i) => [`t${String(i).padStart(3, '0')}${'x'.repeat(36)}`]);
    const trigger = sets[7]?.[0] ?? '';
    const campaign = await campaignWithoutRounds(db, `shared-${w.group}`, sets, [w.group]);
    // alice (US) screens towards bob (CN), bob towards alice: one sender in each scope
    for (const s of [scope('US', 'CN'), scope('CN', 'US')])
      await insertFollowup(db, {
        campaignId: campaign.id,
        procedure: 'screen',
        input: sets,
        scope: s,
        key: screenKey(s),
      });
    const t0 = Date.now();
    await advanceFollowups(db, new Date(t0), { checkinIntervalMs: 0 });
    const canaries = await rows<DueCanary & { kind: string; pairId: string }>(
      db,
      sql`select c.id, c.text, c.nonce, c.send_at as "sendAt", a.handle as sender, c.kind, c.pair_id as "pairId"
          from canaries c join accounts a on a.id = c.sender_account_id
          where c.campaign_id = ${campaign.id}::uuid order by c.send_at`,
    );
    /** Each screen's first step, bob's (from CN) first. */
    const steps = async () =>
      rows<{
        sender: string;
        messages: { terms: string[]; control: boolean }[];
        pairIds: string[];
        results: string[] | null;
      }>(
        db,
        sql`select f.scope->>'sender_region' as sender, s.messages, s.pair_ids as "pairIds", s.results
            from followup_steps s join followups f on f.id = s.followup_id
            where f.campaign_id = ${campaign.id}::uuid and s.step = 0 order by 1`,
      );
    const [fromCN, fromUS] = await steps();
    for (const [step, handle] of [
      [fromUS, w.handles.alice],
      [fromCN, w.handles.bob],
    ] as const) {
      const n = step?.messages.length ?? 0;
      expect(n).toBeGreaterThan(10);
      expect(step?.messages.every((m) => !m.control)).toBe(true);
      const mine = canaries.filter((c) => c.sender === handle);
      // a test per pack, and ceil(n / 10) controls instead of n
      expect(mine.filter((c) => c.kind === 'test')).toHaveLength(n);
      expect(mine.filter((c) => c.kind === 'control')).toHaveLength(Math.ceil(n / 10));
    }
    // bob never sees the trigger; alice's first control is lost (one of two), bob's controls
    // both (every one of his)
    const controls = (handle: string) => canaries.filter((c) => c.kind === 'control' && c.sender === handle);
    const lost = new Set([controls(w.handles.alice)[0]?.id, ...controls(w.handles.bob).map((c) => c.id)]);
    await reportDeliveries(app, w, canaries, (c) => {
      if (lost.has(c.id)) return [];
      if (c.sender === w.handles.alice) return c.text.includes(trigger) ? [] : [w.handles.bob];
      return [w.handles.alice];
    });
    // the lost controls and the drop are final only after their deadline and grace
    const sentBy = Math.max(...canaries.map((c) => Date.parse(c.sendAt)));
    await advanceFollowups(db, new Date(sentBy + 1000), { checkinIntervalMs: 0 });
    expect((await steps()).map((s) => s.results)).toEqual([null, null]);
    const after = (await lastDeadlineOf(db, campaign.id)) + 3000 + 1000;
    await finaliseOutcomes(db, new Date(after));
    await advanceFollowups(db, new Date(after), { checkinIntervalMs: 0 });
    const [readCN, readUS] = await steps();
    // one of alice's two controls failed: not most, so her packs are read; all of bob's: void
    expect(readUS?.results).toEqual(
      readUS?.messages.map((m) => (m.terms.includes(trigger) ? 'positive' : 'negative')),
    );
    expect(readUS?.results).toContain('positive');
    expect(readCN?.results).toEqual(readCN?.messages.map(() => 'void'));
  });

  it('sends a step again with new pairs when no probe took it in time, at most twice, and reads its last sending', async () => {
    const { db } = getDb();
    const campaign = await campaignWithoutRounds(db, `resend-${w.group}`, LISTED, [w.group]);
    const screen = (s: ReturnType<typeof scope>) =>
      insertFollowup(db, {
        campaignId: campaign.id,
        procedure: 'screen',
        input: LISTED,
        scope: s,
        key: screenKey(s),
      });
    const t0 = Date.now();
    const sweep = (at: number) => advanceFollowups(db, new Date(at), { checkinIntervalMs: 0 });
    // carol (AU, on the CN probe) screens towards alice first, and her probe takes the step
    // but never reports it: a probe that took a step is not asked again
    await screen(scope('AU', 'US'));
    await sweep(t0);
    expect(
      (await takeDueCanaries(db, w.cn.id, new Date(t0), new Date(t0 + 3_600_000))).length,
    ).toBeGreaterThan(0);
    // alice (US) towards bob (CN), and bob towards alice: no probe takes these steps
    await screen(scope('US', 'CN'));
    await screen(scope('CN', 'US'));
    await sweep(t0);
    const stepsOf = async () =>
      new Map(
        await Promise.all(
          (
            await rows<{ id: string; sender: string }>(
              db,
              sql`select id, scope->>'sender_region' as sender from followups where campaign_id = ${campaign.id}::uuid`,
            )
          ).map(async (f) => [f.sender, (await followupSteps(db, f.id))[0]] as const),
        ),
      );
    const first = await stepsOf();
    const n = (sender: string) => first.get(sender)?.messages.length ?? 0;
    expect(n('US')).toBeGreaterThan(0);
    const canariesOf = (pairs: readonly string[]) =>
      rows<DueCanary & { pairId: string }>(
        db,
        sql`select c.id, c.text, c.nonce, c.send_at as "sendAt", a.handle as sender, c.pair_id as "pairId"
            from canaries c join accounts a on a.id = c.sender_account_id
            where c.pair_id = any(${sql.param(pairs)}::uuid[])`,
      );
    const allPairs = async (sender: string) =>
      (
        await rows<{ pairIds: string[] }>(
          db,
          sql`select s.pair_ids as "pairIds" from followup_steps s join followups f on f.id = s.followup_id
              where f.campaign_id = ${campaign.id}::uuid and f.scope->>'sender_region' = ${sender}`,
        )
      )[0]?.pairIds ?? [];

    // past every deadline: the steps no probe took are sent again, as new pairs, canaries and
    // nonces; the one a probe took waits for its reports
    await sweep((await lastDeadlineOf(db, campaign.id)) + 1);
    const second = await stepsOf();
    for (const sender of ['US', 'CN']) {
      const [before, after] = [first.get(sender), second.get(sender)];
      expect(after).toMatchObject({ step: 0, resends: 1, results: null, messages: before?.messages });
      expect(await allPairs(sender)).toEqual([...(before?.pairIds ?? []), ...(after?.pairIds ?? [])]);
      const [old, fresh] = [await canariesOf(before?.pairIds ?? []), await canariesOf(after?.pairIds ?? [])];
      expect(fresh.length).toBe(old.length);
      const oldNonces = new Set(old.map((c) => c.nonce));
      expect(fresh.some((c) => oldNonces.has(c.nonce))).toBe(false);
    }
    expect(second.get('AU')).toMatchObject({ resends: 0, results: null, pairIds: first.get('AU')?.pairIds });

    // alice's second sending arrives: her step reads negatives from it alone
    await reportDeliveries(app, w, await canariesOf(second.get('US')?.pairIds ?? []), () => [w.handles.bob]);
    await sweep((await lastDeadlineOf(db, campaign.id)) + 1);
    const third = await stepsOf();
    expect(third.get('US')?.results).toEqual(first.get('US')?.messages.map(() => 'negative'));
    expect(third.get('CN')).toMatchObject({ resends: 2, results: null });
    expect(await allPairs('CN')).toHaveLength(3 * n('CN'));

    // bob's third sending is not taken either: not sent a fourth time, but read as voids once lost
    const last = await lastDeadlineOf(db, campaign.id);
    await sweep(last + 1);
    expect((await stepsOf()).get('CN')).toMatchObject({ resends: 2, results: null });
    await finaliseOutcomes(db, new Date(last + 10_001));
    await sweep(last + 10_001);
    const done = await stepsOf();
    expect(done.get('CN')?.results).toEqual(first.get('CN')?.messages.map(() => 'void'));
    expect(await allPairs('CN')).toHaveLength(3 * n('CN'));
    expect(done.get('AU')).toMatchObject({ resends: 0 });
    expect(await allPairs('AU')).toHaveLength(n('AU'));

    // every sending's pairs stay the follow-up's: the rounds' judging never counts them
    const loose = await rows<{ n: number }>(
      db,
      sql`select count(*)::int as n from canaries c where c.campaign_id = ${campaign.id}::uuid
            and not exists (select 1 from followup_steps s where s.pair_ids @> array[c.pair_id])`,
    );
    expect(loose[0]?.n).toBe(0);
  });

  it('advances each follow-up run in a transaction of its own, and only a run with something to do, so check-ins are not held for the whole sweep', async () => {
    const { db } = getDb();
    const campaign = await campaignWithoutRounds(db, `tx-${w.group}`, LISTED, [w.group]);
    const regions = ['US', 'CN', 'AU'];
    const scopes = regions.flatMap((from) =>
      regions.filter((to) => to !== from).map((to) => scope(from, to)),
    );
    for (const s of scopes)
      await insertFollowup(db, {
        campaignId: campaign.id,
        procedure: 'screen',
        input: LISTED,
        scope: s,
        key: screenKey(s),
      });
    // the same database, counting the transactions the sweep opens
    let transactions = 0;
    const counted = new Proxy(db, {
      get(target, key) {
        const value = Reflect.get(target, key, target);
        if (key === 'transaction')
          return (...args: Parameters<typeof db.transaction>) => {
            transactions++;
            return target.transaction(...args);
          };
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    // the sweep alone with this campaign (the file's earlier campaigns still have runs)
    const others = await rows<{ id: string }>(
      db,
      sql`update campaigns set active = false where active and id <> ${campaign.id}::uuid returning id`,
    );
    let again = 0;
    try {
      await advanceFollowups(counted, new Date(), { checkinIntervalMs: 0 });
      const first = transactions;
      // at once again: every screen waits for its first step's outcomes, and none is visited
      await advanceFollowups(counted, new Date(), { checkinIntervalMs: 0 });
      again = transactions - first;
      transactions = first;
    } finally {
      await db.execute(
        sql`update campaigns set active = true where id = any(${sql.param(others.map((o) => o.id))}::uuid[])`,
      );
    }
    // one to start runs and list them, then one for each of the six screens
    expect(transactions).toBe(1 + scopes.length);
    // then only the one to start runs: no screen has anything to read or send yet
    expect(again).toBe(1);
    const steps = await rows<{ n: number }>(
      db,
      sql`select count(*)::int as n from followup_steps s join followups f on f.id = s.followup_id
          where f.campaign_id = ${campaign.id}::uuid`,
    );
    expect(steps[0]?.n).toBe(scopes.length);
  });

  it('screens packed term sets, clears the innocent ones without sending them alone, and judges the rest', async () => {
    const { db } = getDb();
    const campaign = await simulatedCampaign(app, db, w, {
      name: 'screen',
      mode: 'screen',
      termSets: LISTED,
      termSetsPerRound: 20,
      censored: (text, region) =>
        region === 'CN' && (text.includes('六四') || (text.includes('709') && text.includes('律师'))),
    });
    const key = termSetKey;
    // 3 members in one group, each of another region: 6 scopes
    const allSettled = async () => {
      const found = await findingsOfCampaign(db, campaign.id);
      const derived = await derivedTermSets(db, campaign.id);
      const running = await rows<{ n: number }>(
        db,
        sql`select count(*)::int as n from followups where campaign_id = ${campaign.id}::uuid and status = 'running'`,
      );
      const wanted = [...LISTED, ...derived].map(key);
      return (
        derived.length > 0 &&
        running[0]?.n === 0 &&
        wanted.every((k) => found.filter((f) => key(f.termSet) === k && f.settled).length === 6)
      );
    };

    const sweeps = await campaign.runUntil(allSettled, 150);
    const found = await findingsOfCampaign(db, campaign.id);
    if (!(await allSettled())) {
      const runs = await rows(
        db,
        sql`select key, status, result from followups where campaign_id = ${campaign.id}::uuid order by key`,
      );
      const list = found.map((f) => `${f.key} ${f.verdict} ${f.settled} ${f.testTrials}`);
      expect.fail(`not settled after ${sweeps} sweeps: ${JSON.stringify({ runs, list }, null, 1)}`);
    }

    // one screen per scope, all done
    const screens = await rows<{ key: string; status: string }>(
      db,
      sql`select key, status from followups where campaign_id = ${campaign.id}::uuid and procedure = 'screen'`,
    );
    expect(screens).toHaveLength(6);
    expect(screens.every((s) => s.status === 'done')).toBe(true);

    // no innocent set went out on its own in a round: the screen's packs cleared them
    const alone = await rows<{ n: number }>(
      db,
      sql`select count(*)::int as n from canaries where campaign_id = ${campaign.id}::uuid
            and round_id is not null and cardinality(term_set) = 1
            and term_set[1] = any(${sql.param(INNOCENT)}::text[])`,
    );
    expect(alone[0]?.n).toBe(0);
    for (const t of INNOCENT) {
      const mine = found.filter((f) => key(f.termSet) === t);
      expect(mine, t).toHaveLength(6);
      for (const f of mine) {
        expect(f, `${f.key}`).toMatchObject({ verdict: 'none', settled: true });
        expect(f.testTrials).toBeGreaterThan(0);
        expect(f.detail).toMatchObject({ source: 'screen' });
      }
    }

    // the suppressed sets: judged by the rounds against their controls where CN receives
    expect((await derivedTermSets(db, campaign.id)).map(key)).toContain(key(['709', '律师']));
    const at = (terms: string[], sender: string, recipient: string) =>
      found.find(
        (f) =>
          key(f.termSet) === key(terms) &&
          f.scope.sender_region === sender &&
          f.scope.recipient_region === recipient,
      );
    for (const [sender, recipient] of [
      ['US', 'CN'],
      ['AU', 'CN'],
    ] as const) {
      expect(at(['六四'], sender, recipient)).toMatchObject({ verdict: 'suppressed', settled: true });
      expect(at(['709', '律师'], sender, recipient)).toMatchObject({
        verdict: 'suppressed',
        settled: true,
        minimal: true,
      });
      expect(at(['709', '律师', '天气预报'], sender, recipient)).toMatchObject({
        verdict: 'suppressed',
        minimal: false,
      });
      expect(at(['六四'], sender, recipient)?.detail).not.toMatchObject({ source: 'screen' });
    }
    for (const f of found.filter((x) => x.scope.recipient_region !== 'CN')) {
      expect(f.verdict, f.key ?? '').toBe('none');
    }
    // 六四 went out one per message for its CN recipients, and reached the others in the group
    // too; those incidental pairs do not reopen the screen's clearance for them
    for (const f of found.filter((x) => key(x.termSet) === '六四' && x.scope.recipient_region !== 'CN')) {
      expect(f.detail, f.key ?? '').toMatchObject({ source: 'screen' });
    }

    // researchers see how each verdict was reached
    const res = await app.inject({ url: `/api/v1/findings?campaign=${campaign.id}&limit=1000` });
    expect(res.statusCode, res.body).toBe(200);
    const served = (res.json() as FindingsResponse).findings;
    const of = (terms: string, recipient: string) =>
      served.filter((f) => termSetKey(f.term_set) === terms && f.scope.recipient_region === recipient);
    expect(of('图书馆', 'CN').length).toBeGreaterThan(0);
    for (const f of of('图书馆', 'CN'))
      expect(f).toMatchObject({ settled: true, evidence: { method: 'screen' } });
    expect(of('六四', 'CN').length).toBeGreaterThan(0);
    for (const f of of('六四', 'CN')) {
      expect(f).toMatchObject({ verdict: 'suppressed', settled: true, evidence: { method: 'paired' } });
    }
  }, 180_000);
});
