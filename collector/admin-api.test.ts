import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { canariesOfCampaign, countRows, termSetsOfList } from './db/inspect.ts';
import { rows } from './db/open.ts';
import { materialiseDueRounds, occurrences } from './rounds.ts';
import { describeEachDb } from './test-support/db.ts';
import { account, checkin, TEST_ADMIN_TOKEN } from './test-support/probe.ts';
import { onAppWorld, type World } from './test-support/world.ts';

const auth = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

describe('occurrences', () => {
  it('lists cron times after a moment up to a limit, in UTC', () => {
    const got = occurrences(
      '*/10 * * * *',
      new Date('2026-06-04T00:05:00Z'),
      new Date('2026-06-04T00:30:00Z'),
    );
    expect(got.map((d) => d.toISOString())).toEqual([
      '2026-06-04T00:10:00.000Z',
      '2026-06-04T00:20:00.000Z',
      '2026-06-04T00:30:00.000Z',
    ]);
  });
});

describeEachDb('admin API', (getDb) => {
  let app: FastifyInstance;
  let w: World;

  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
  });

  /** A monitor campaign on the world's group, a round a minute, started ten minutes ago. */
  const groupCampaign = (name: string, list: string, seed: string) => ({
    name,
    mode: 'monitor',
    term_list_ids: [list],
    conversations: { platform: 'testbed', refs: [w.group] },
    cadence: '* * * * *',
    deadline_seconds: 120,
    seed,
    starts_at: new Date(Date.now() - 600_000).toISOString(),
  });
  const postCampaign = (payload: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: '/admin/v1/campaigns', headers: auth, payload });
  const upload = (name: string, text: string) =>
    app.inject({
      method: 'POST',
      url: `/admin/v1/term-lists?name=${encodeURIComponent(name)}`,
      headers: { ...auth, 'content-type': 'text/plain; charset=utf-8' },
      payload: text,
    });

  it('refuses a missing or wrong admin token with 401 and changes nothing', async () => {
    const before = await countRows(getDb().db);
    for (const headers of [
      {},
      { authorization: 'Bearer not-the-token-at-all' },
      { authorization: TEST_ADMIN_TOKEN },
    ]) {
      const res = await app.inject({
        method: 'POST',
        url: '/admin/v1/enrollment-tokens',
        headers,
        payload: {},
      });
      expect(res.statusCode).toBe(401);
      expect(res.json().code).toBe('SD_ERR_ADMIN_TOKEN');
    }
    expect(await countRows(getDb().db)).toEqual(before);
  });

  it('stores an uploaded term list NFC-normalised and reports bad lines by number', async () => {
    const decomposed = 'Cafe\u0301 + 六四';
    const res = await upload('list-nfc', `${decomposed}\n\n+ 天安门\n# comment\n709+律师\n`);
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body.term_list.term_sets).toBe(2);
    expect(body.skipped).toEqual([{ line: 3, message: expect.stringMatching(/empty term/) }]);
    const stored = await termSetsOfList(getDb().db, body.term_list.id);
    expect(stored).toEqual([
      ['Caf\u00e9', '六四'],
      ['709', '律师'],
    ]);
    const again = await upload('list-nfc', '刘晓波\n');
    expect(again.statusCode).toBe(409);
  });

  it('refuses a term file with no valid line, naming the lines', async () => {
    const res = await upload('list-bad', '+\n a + \n');
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/line 1: .*line 2: /);
  });

  it('refuses a campaign with an unknown term list or a bad cron, naming the field', async () => {
    const base = {
      name: 'bad',
      mode: 'monitor',
      term_list_ids: ['00000000-0000-4000-8000-000000000000'],
      conversations: {},
      cadence: '*/5 * * * *',
      deadline_seconds: 60,
    };
    const unknown = await postCampaign(base);
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().message).toMatch(/^\/term_list_ids: unknown/);
    const list = (await upload('list-cron', '六四\n')).json().term_list.id;
    const cron = await postCampaign({ ...base, term_list_ids: [list], cadence: 'every day' });
    expect(cron.statusCode).toBe(400);
    expect(cron.json().message).toMatch(/^\/cadence: /);
    const mode = await postCampaign({ ...base, term_list_ids: [list], mode: 'spy' });
    expect(mode.statusCode).toBe(400);
    expect(mode.json().message).toMatch(/\/mode/);
  });

  it('refuses a campaign whose terms cannot get matched controls', async () => {
    const list = (await upload('list-hangul', '한국어\n')).json().term_list.id;
    const res = await postCampaign({
      name: 'hangul',
      mode: 'monitor',
      term_list_ids: [list],
      conversations: {},
      cadence: '*/5 * * * *',
      deadline_seconds: 60,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/^\/term_list_ids: no matched controls .*한국어/);
  });

  it('materialises due rounds once into matched test/control pairs handed to the sender probe', async () => {
    const list = (await upload('list-rounds', '六四 + 天安门\n刘晓波\n')).json().term_list.id;
    const created = await postCampaign(groupCampaign('rounds', list, 'fixed'));
    expect(created.statusCode).toBe(201);
    const campaignId = created.json().id as string;
    // Rounds at the last two minute marks: every canary is due by the check-in below. Planned
    // on a clock a minute behind, after which the probes' last check-ins lie: the planner would
    // move the canaries to a next check-in it cannot place (decision 024), so the US probe is
    // taken as never checked in, hearing of them at once.
    const now = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 1000);
    await getDb().db.execute(sql`update probes set last_checkin_at = null where id = ${w.us.id}::uuid`);
    const [a, b] = await Promise.all([
      materialiseDueRounds(getDb().db, now, 60_000),
      materialiseDueRounds(getDb().db, now, 60_000),
    ]);
    const again = await materialiseDueRounds(getDb().db, now, 60_000);
    // Counted for this campaign: the world's own campaign (hourly, no term sets) has a round of
    // its own when the window holds the hour.
    const roundsOf = async () =>
      (
        await rows<{ n: number }>(
          getDb().db,
          sql`select count(*)::int as n from rounds where campaign_id = ${campaignId}::uuid`,
        )
      )[0]?.n;
    expect(a.rounds + b.rounds).toBeGreaterThanOrEqual(2);
    expect(await roundsOf()).toBe(2);
    expect(again.rounds).toBe(0);
    const canaries = await canariesOfCampaign(getDb().db, campaignId);
    expect(canaries.length).toBe(a.canaries + b.canaries);
    expect(canaries.length).toBeGreaterThan(0);
    // Every pair is one test and one control with the same tested term set and sender.
    const pairs = new Map<string, typeof canaries>();
    for (const c of canaries) pairs.set(c.pairId, [...(pairs.get(c.pairId) ?? []), c]);
    for (const pair of pairs.values()) {
      expect(pair.map((c) => c.kind).sort()).toEqual(['control', 'test']);
      expect(pair[0]!.termSet).toEqual(pair[1]!.termSet);
      expect(pair[0]!.senderAccountId).toBe(pair[1]!.senderAccountId);
      const control = pair.find((c) => c.kind === 'control')!;
      for (const t of control.termSet) expect(control.text).not.toContain(t);
    }
    const list2 = await app.inject({ method: 'GET', url: '/admin/v1/campaigns', headers: auth });
    const summary = list2.json().campaigns.find((c: { id: string }) => c.id === campaignId);
    expect(summary.canaries).toBe(canaries.length);
    // Alice's canaries go to the US probe only.
    const aliceIds = canaries.filter((c) => c.senderAccountId === w.accountIds.alice).map((c) => c.id);
    const res = await checkin(app, w.us, [account('testbed', w.handles.alice, 'US')], []);
    const handed = res.json().canaries.map((c: { canary_id: string }) => c.canary_id);
    expect(aliceIds.length).toBeGreaterThan(0);
    expect(handed.sort()).toEqual(aliceIds.sort());
  });

  it('shows the term sets a round could not plan on the campaign, and measures the rest', async () => {
    // Every benign Latin word has a vowel: with all of them tested, no single-vowel term can
    // get a control free of tested terms (nonces take several forms, so none is unavoidable).
    const list = (await upload('list-skip', 'a\ne\ni\no\nu\ny\n刘晓波\n')).json().term_list.id;
    const created = await postCampaign(groupCampaign('skip', list, 'skip'));
    expect(created.statusCode, created.body).toBe(201);
    const campaignId = created.json().id as string;
    expect(created.json().skipped_term_sets).toEqual([]);
    await materialiseDueRounds(getDb().db, new Date(Math.floor(Date.now() / 60_000) * 60_000 - 1000), 60_000);
    const canaries = await canariesOfCampaign(getDb().db, campaignId);
    expect(canaries.length).toBeGreaterThan(0);
    expect(canaries.every((c) => c.termSet.join() === '刘晓波')).toBe(true);
    const res = await app.inject({ method: 'GET', url: '/admin/v1/campaigns', headers: auth });
    const summary = res.json().campaigns.find((c: { id: string }) => c.id === campaignId);
    expect(summary.skipped_term_sets.map((s: { term_set: string[] }) => s.term_set[0]).sort()).toEqual([
      'a',
      'e',
      'i',
      'o',
      'u',
      'y',
    ]);
    for (const s of summary.skipped_term_sets) {
      expect(s.conversations.length).toBeGreaterThan(0);
      expect(s.reason).toMatch(/no benign control/);
    }
  });

  it('plans no sends for an account in its quiet hours, and reads it again once it is active', async () => {
    const list = (await upload('list-quiet', '刘晓波\n')).json().term_list.id;
    const created = await postCampaign(groupCampaign('quiet', list, 'quiet'));
    expect(created.statusCode, created.body).toBe(201);
    const campaignId = created.json().id as string;
    await checkin(app, w.us, [account('testbed', w.handles.alice, 'US', 'quiet')], []);
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    await materialiseDueRounds(getDb().db, new Date(minute - 61_000), 60_000);
    const quiet = await canariesOfCampaign(getDb().db, campaignId);
    expect(quiet.length).toBeGreaterThan(0);
    expect(quiet.some((c) => c.senderAccountId === w.accountIds.alice)).toBe(false);
    await checkin(app, w.us, [account('testbed', w.handles.alice, 'US')], []);
    await materialiseDueRounds(getDb().db, new Date(minute - 1000), 60_000);
    const later = await canariesOfCampaign(getDb().db, campaignId);
    expect(later.some((c) => c.senderAccountId === w.accountIds.alice)).toBe(true);
  });

  it('lists probes and accounts without any address', async () => {
    const probes = await app.inject({ method: 'GET', url: '/admin/v1/probes', headers: auth });
    expect(probes.statusCode).toBe(200);
    const us = probes.json().probes.find((p: { id: string }) => p.id === w.us.id);
    expect(us).toMatchObject({ country: 'US', asn: 64500 });
    expect(JSON.stringify(probes.json())).not.toMatch(/127\.0\.0\.1|remote/);
    const accounts = await app.inject({ method: 'GET', url: '/admin/v1/accounts', headers: auth });
    const bob = accounts.json().accounts.find((a: { handle: string }) => a.handle === w.handles.bob);
    expect(bob).toMatchObject({ region: 'CN', probe_id: w.cn.id, probe_country: 'CN' });
  });
});
