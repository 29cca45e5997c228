/**
 * Isolation end to end, through real ingest: a campaign lists `709 + 律师 + 天气预报`; the
 * censor (this test) drops any message carrying both 709 and 律师 for CN recipients, so
 * 天气预报 is innocent. The collector's own steps run on a simulated clock (one minute a
 * sweep): rounds → signed sent/received events from the probes → outcomes → findings →
 * follow-ups. Isolation runs must be stored in the database with their steps, derive the
 * minimal set `709 + 律师`, and the findings must report that set (and not the listed one)
 * as the minimal suppressed term set, `none` for recipients outside CN.
 */
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { derivedTermSets, findingsOfCampaign } from './db/findings.ts';
import { insertFollowup } from './db/followups.ts';
import { rows } from './db/open.ts';
import { advanceFollowups, isolationNeed } from './followups.ts';
import { findingKey, isolateKey } from './keys.ts';
import { finaliseOutcomes } from './outcomes.ts';
import {
  campaignWithoutRounds,
  dueCanaries,
  lastDeadlineOf,
  reportDeliveries,
  simulatedCampaign,
} from './test-support/censor.ts';
import { describeEachDb } from './test-support/db.ts';
import { onAppWorld, type World } from './test-support/world.ts';

describe('isolationNeed', () => {
  const scope = {
    platform: 't',
    conversation_kind: 'group' as const,
    sender_region: 'US',
    recipient_region: 'CN',
  };
  const f = (terms: string[], verdict: string, settled = true) =>
    [findingKey(terms, scope), { verdict, settled }] as const;
  it('runs when a subset one term smaller is not tested', () => {
    expect(isolationNeed(['709', '律师'], scope, new Set(['709']), new Map([f(['709'], 'none')]))).toBe(
      'run',
    );
  });
  it('waits while the listed subsets are open, and needs no run once all settle none', () => {
    const tested = new Set(['709', '律师']);
    expect(
      isolationNeed(
        ['709', '律师'],
        scope,
        tested,
        new Map([f(['709'], 'none'), f(['律师'], 'none', false)]),
      ),
    ).toBe('wait');
    expect(
      isolationNeed(['709', '律师'], scope, tested, new Map([f(['709'], 'none'), f(['律师'], 'none')])),
    ).toBe('minimal');
    // a subset settled on something other than none (e.g. inconclusive at the last look): isolate
    expect(
      isolationNeed(
        ['709', '律师'],
        scope,
        tested,
        new Map([f(['709'], 'none'), f(['律师'], 'inconclusive')]),
      ),
    ).toBe('run');
  });
});

describeEachDb('isolation end to end', (getDb) => {
  let app: FastifyInstance;
  let w: World;

  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
  });

  it("reads a step as soon as every message reached the scope's recipients, a drop only after its deadline and grace", async () => {
    const { db } = getDb();
    const campaign = await campaignWithoutRounds(db, `early-${w.group}`, [['甲', '乙', '丙']], [w.group]);
    const scope = {
      platform: 'testbed',
      conversation_kind: 'group' as const,
      sender_region: 'US',
      recipient_region: 'CN',
    };
    const t0 = Date.now();
    // two runs in the scope (alice in the US sends, bob in CN receives); the censor drops 丁 for bob
    for (const input of [
      ['甲', '乙', '丙'],
      ['丁', '戊', '己'],
    ])
      await insertFollowup(db, {
        campaignId: campaign.id,
        procedure: 'isolate',
        input,
        scope,
        key: isolateKey(input, scope),
      });
    // the probes hear of a step at once (check-in interval 0), so its messages are due from t0
    await advanceFollowups(db, new Date(t0), { checkinIntervalMs: 0 });
    const canaries = await dueCanaries(db, campaign.id, new Date(t0 + 3600_000));
    expect(canaries.length).toBeGreaterThan(0);
    const lastDeadline = await lastDeadlineOf(db, campaign.id);
    expect(lastDeadline).toBeGreaterThan(t0 + 2000);
    // every canary is sent when due and seen 300 ms later, except that bob never sees 丁
    await reportDeliveries(app, w, canaries, (c) => (c.text.includes('丁') ? [] : [w.handles.bob]));
    const steps = async () =>
      rows<{ input: string[]; step: number; results: string[] | null }>(
        db,
        sql`select f.input, s.step, s.results from followup_steps s join followups f on f.id = s.followup_id
            where f.campaign_id = ${campaign.id}::uuid order by f.input::text, s.step`,
      );
    /** Per run (its input, joined), the results of its first step: null while not read. */
    const firstStep = async () => {
      const out = new Map<string, string[] | null>();
      for (const s of await steps()) if (s.step === 0) out.set(s.input.join(''), s.results);
      return out;
    };
    // a second after the last send, long before deadline + grace: the run whose message arrived
    // is read; the run whose test was dropped waits
    const sentBy = Math.max(...canaries.map((c) => Date.parse(c.sendAt)));
    await advanceFollowups(db, new Date(sentBy + 1000), { checkinIntervalMs: 0 });
    const early = await firstStep();
    expect(early.get('甲乙丙')).toEqual(['negative']);
    expect(early.get('丁戊己')).toBeNull();
    // after the deadline and the grace (the campaign's deadline), the drop is read as positive
    const after = lastDeadline + 3000 + 1000;
    await finaliseOutcomes(db, new Date(after));
    await advanceFollowups(db, new Date(after), { checkinIntervalMs: 0 });
    expect((await firstStep()).get('丁戊己')).toEqual(['positive']);
  });

  it('isolates 709 + 律师 out of 709 + 律师 + 天气预报 and reports it as the minimal set', async () => {
    const { db } = getDb();
    const campaign = await simulatedCampaign(app, db, w, {
      name: 'iso',
      mode: 'isolate',
      termSets: [['709', '律师', '天气预报']],
      termSetsPerRound: 10,
      censored: (text, region) => region === 'CN' && text.includes('709') && text.includes('律师'),
    });

    const minimalSettled = async () => {
      const derived = await derivedTermSets(db, campaign.id);
      const found = await findingsOfCampaign(db, campaign.id);
      const pair = found.filter((f) => f.termSet.join('+') === '709+律师');
      return derived.length > 0 && pair.length === 6 && pair.every((f) => f.settled);
    };

    const sweeps = await campaign.runUntil(minimalSettled, 120);
    if (!(await minimalSettled())) {
      const state = await rows(
        db,
        sql`select f.key, f.status, (select json_agg(json_build_object('m', s.messages, 'r', s.results) order by s.step)
              from followup_steps s where s.followup_id = f.id) as steps
            from followups f where f.campaign_id = ${campaign.id}::uuid`,
      );
      const found = (await findingsOfCampaign(db, campaign.id)).map(
        (f) => `${f.key} ${f.verdict} ${f.settled} ${f.minimal} ${f.testTrials}`,
      );
      expect.fail(`not settled after ${sweeps} sweeps: ${JSON.stringify({ state, found }, null, 1)}`);
    }

    // follow-ups in the database: one isolation run per suppressed scope, each with stored steps
    const runs = await rows<{ key: string; status: string; steps: number; pairs: number; result: unknown }>(
      db,
      sql`select f.key, f.status, f.result,
            (select count(*)::int from followup_steps s where s.followup_id = f.id) as steps,
            (select count(*)::int from canaries c join followup_steps s
               on s.followup_id = f.id and c.pair_id = any(s.pair_ids) where c.round_id is null) as pairs
          from followups f where f.campaign_id = ${campaign.id}::uuid order by f.key`,
    );
    // (no run for the derived set itself: it is minimal already)
    const toCN = (sender: string) =>
      ({
        platform: 'testbed',
        conversation_kind: 'group',
        sender_region: sender,
        recipient_region: 'CN',
      }) as const;
    expect(runs.map((r) => r.key)).toEqual([
      isolateKey(['709', '天气预报', '律师'], toCN('AU')),
      isolateKey(['709', '天气预报', '律师'], toCN('US')),
    ]);
    for (const r of runs) {
      expect(r.status).toBe('done');
      expect(r.steps).toBeGreaterThan(0);
      expect(r.pairs).toBeGreaterThan(0); // tests and controls stored as canaries without a round
      expect(r.result).toMatchObject({ combinations: [['709', '律师']] });
    }
    expect(await derivedTermSets(db, campaign.id)).toEqual([['709', '律师']]);

    const found = await findingsOfCampaign(db, campaign.id);
    const at = (terms: string, sender: string, recipient: string) =>
      found.find(
        (f) =>
          f.termSet.join('+') === terms &&
          f.scope.sender_region === sender &&
          f.scope.recipient_region === recipient,
      );
    for (const sender of ['US', 'AU']) {
      // the minimal set carries the finding; the listed superset is not minimal there
      expect(at('709+律师', sender, 'CN')).toMatchObject({
        verdict: 'suppressed',
        settled: true,
        minimal: true,
      });
      expect(at('709+天气预报+律师', sender, 'CN')).toMatchObject({ verdict: 'suppressed', minimal: false });
    }
    // the listed and the derived set: `none` wherever the recipient is not in CN; the follow-up
    // messages' subsets (709, 律师 + 天气预报, …) leave no findings of their own
    expect(found.every((f) => ['709+天气预报+律师', '709+律师'].includes(f.termSet.join('+')))).toBe(true);
    const tested = found.filter((x) => ['709+天气预报+律师', '709+律师'].includes(x.termSet.join('+')));
    expect(tested).toHaveLength(12);
    for (const f of tested.filter((x) => x.scope.recipient_region !== 'CN')) {
      expect(f.verdict, f.key ?? '').toBe('none');
    }
  }, 120_000);
});
