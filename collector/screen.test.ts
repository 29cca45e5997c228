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
import { derivedTermSets, findingsOfCampaign } from './db/findings.ts';
import { rows } from './db/open.ts';
import { termSetKey } from './keys.ts';
import { simulatedCampaign } from './test-support/censor.ts';
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

describeEachDb('screen mode end to end', (getDb) => {
  let app: FastifyInstance;
  let w: World;

  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
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
