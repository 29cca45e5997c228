import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutcomeRecord, OutcomesPage } from '../../protocol/research.ts';
import { insertFinding } from '../db/research-fixtures.ts';
import { describeEachDb } from '../test-support/db.ts';
import {
  buildResearchApp,
  buildResearchWorld,
  type ExpectedOutcome,
  type ResearchWorld,
  SENSITIVE,
  XSS,
} from './research-fixture.ts';

const keyOf = (o: { canary_id: string; recipient_account_id: string }) =>
  `${o.canary_id}/${o.recipient_account_id}`;
const expectedKey = (e: ExpectedOutcome) => `${e.canaryId}/${e.recipientAccountId}`;

async function allPages(app: FastifyInstance, query: string, limit = 50): Promise<OutcomeRecord[]> {
  const out: OutcomeRecord[] = [];
  let cursor: string | null = null;
  for (let guard = 0; guard < 1000; guard++) {
    const url: string = `/api/v1/outcomes?limit=${limit}${query ? `&${query}` : ''}${cursor ? `&cursor=${cursor}` : ''}`;
    const res = await app.inject({ method: 'GET', url });
    expect(res.statusCode, res.body).toBe(200);
    const page = res.json() as OutcomesPage;
    out.push(...page.outcomes);
    cursor = page.next_cursor;
    if (!cursor) return out;
  }
  throw new Error('paging did not end');
}

describeEachDb('research API: outcomes', (getDb) => {
  let app: FastifyInstance;
  let w: ResearchWorld;
  const campaignQ = () => `campaign=${w.campaignId}`;
  const mine = () => w.expected;

  beforeAll(async () => {
    app = await buildResearchApp(getDb().db);
    w = await buildResearchWorld(app, getDb().db, { hours: 4 });
  });
  afterAll(async () => {
    await app.close();
  });

  it('returns every outcome of a campaign once, as ingested, in send-time order', async () => {
    const got = await allPages(app, campaignQ());
    expect(got.map(keyOf).sort()).toEqual(mine().map(expectedKey).sort());
    const times = got.map((o) => o.send_at);
    expect([...times].sort()).toEqual(times);
    const byKey = new Map(mine().map((e) => [expectedKey(e), e]));
    for (const o of got) {
      const e = byKey.get(keyOf(o))!;
      expect(o.status).toBe(e.status);
      expect(o.term_set).toEqual(e.termSet);
      expect(o.terms_key).toBe(JSON.stringify(e.termSet));
      expect(o.latency_ms).toBe(e.latencyMs);
      expect(o.sender_region).toBe(e.senderRegion);
      expect(o.recipient_region).toBe(e.recipientRegion);
    }
  });

  const filters: [string, (w: ResearchWorld) => string, (e: ExpectedOutcome, w: ResearchWorld) => boolean][] =
    [
      ['platform', () => 'platform=testbed', () => true],
      [
        'terms',
        () => `terms=${encodeURIComponent(JSON.stringify(SENSITIVE))}`,
        (e) => e.termSet === SENSITIVE,
      ],
      [
        'terms with markup and SQL',
        () => `terms=${encodeURIComponent(JSON.stringify(XSS))}`,
        (e) => e.termSet === XSS,
      ],
      ['kind', () => 'kind=control', (e) => e.kind === 'control'],
      [
        'status list',
        () => 'status=missing,altered',
        (e) => e.status === 'missing' || e.status === 'altered',
      ],
      ['sender region', () => 'sender_region=CN', (e) => e.senderRegion === 'CN'],
      ['recipient regions', () => 'recipient_region=CN,AU', (e) => e.recipientRegion !== 'US'],
      ['conversation kind', () => 'conversation_kind=direct', (e) => e.conversationKind === 'direct'],
      [
        'probe (either side)',
        (w) => `probe=${w.probes.au.id}`,
        (e, w) => e.recipientProbeId === w.probes.au.id,
      ],
      [
        'time range',
        (w) => `from=${new Date(w.start.getTime() + 3_600_000).toISOString()}&to=${w.end.toISOString()}`,
        (e, w) => e.sendAt.getTime() >= w.start.getTime() + 3_600_000 && e.sendAt < w.end,
      ],
      [
        'combined',
        () => 'kind=test&conversation_kind=group&recipient_region=CN&status=missing',
        (e) =>
          e.kind === 'test' &&
          e.conversationKind === 'group' &&
          e.recipientRegion === 'CN' &&
          e.status === 'missing',
      ],
    ];
  for (const [name, query, keep] of filters) {
    it(`filters by ${name}`, async () => {
      const got = await allPages(app, `${campaignQ()}&${query(w)}`, 200);
      const want = mine().filter((e) => keep(e, w));
      expect(want.length).toBeGreaterThan(0);
      expect(want.length).toBeLessThan(mine().length + (name === 'platform' ? 1 : 0));
      expect(got.map(keyOf).sort()).toEqual(want.map(expectedKey).sort());
    });
  }

  it('filters by verdict through findings covering term set, scope and window', async () => {
    await insertFinding(getDb().db, {
      campaignId: w.campaignId,
      termSet: SENSITIVE,
      scope: { platform: 'testbed', sender_region: 'US', recipient_region: 'CN', conversation_kind: 'group' },
      windowStart: w.start,
      windowEnd: w.end,
      verdict: 'suppressed',
      testTrials: 10,
      controlTrials: 10,
      testRate: 1,
      controlRate: 0,
      pValue: 0.0001,
      qValue: 0.001,
      ciLow: 0.6,
      ciHigh: 1,
    });
    const got = await allPages(app, `${campaignQ()}&verdict=suppressed`, 200);
    const want = mine().filter(
      (e) =>
        e.termSet === SENSITIVE &&
        e.senderRegion === 'US' &&
        e.recipientRegion === 'CN' &&
        e.conversationKind === 'group' &&
        e.sendAt <= w.end,
    );
    expect(want.length).toBeGreaterThan(0);
    expect(got.map(keyOf).sort()).toEqual(want.map(expectedKey).sort());
    const none = await allPages(app, `${campaignQ()}&verdict=delayed`);
    expect(none).toEqual([]);
  });

  it('pages newest first with order=desc and refuses a cursor of the other order', async () => {
    const asc = await allPages(app, campaignQ(), 500);
    const desc = await allPages(app, `${campaignQ()}&order=desc`, 37);
    expect(desc.map(keyOf)).toEqual(asc.map(keyOf).reverse());
    const first = (
      await app.inject({ url: `/api/v1/outcomes?${campaignQ()}&limit=5` })
    ).json() as OutcomesPage;
    const wrong = await app.inject({ url: `/api/v1/outcomes?order=desc&cursor=${first.next_cursor}` });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().code).toBe('SD_ERR_VALIDATION');
  });

  it('refuses a forged cursor, an unknown filter and a bad value with 400', async () => {
    for (const url of [
      '/api/v1/outcomes?cursor=bm90LWEtY3Vyc29y',
      `/api/v1/outcomes?cursor=${Buffer.from(JSON.stringify({ v: 1, t: "x' or 1=1", c: 'a', r: 'b', o: 'asc' })).toString('base64url')}`,
      '/api/v1/outcomes?colour=red',
      '/api/v1/outcomes?status=gone',
      '/api/v1/outcomes?limit=100000',
      '/api/v1/outcomes?terms=notjson',
    ]) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().code, url).toBe('SD_ERR_VALIDATION');
    }
  });

  describe('keyset paging while probes report', () => {
    it('sees every row that existed once, never twice, while rounds are ingested between pages', async () => {
      const before = new Set((await allPages(app, campaignQ(), 500)).map(keyOf));
      const seen: string[] = [];
      let cursor: string | null = null;
      let page = 0;
      const added: string[] = [];
      do {
        const res = await app.inject({
          url: `/api/v1/outcomes?${campaignQ()}&limit=23${cursor ? `&cursor=${cursor}` : ''}`,
        });
        const body = res.json() as OutcomesPage;
        seen.push(...body.outcomes.map(keyOf));
        cursor = body.next_cursor;
        page += 1;
        if (page === 2) {
          // A late round (sent before the cursor position) and a new one (after it): probes reporting now.
          const late = await w.addRound(new Date(w.start.getTime() + 60_000 + 500));
          const fresh = await w.addRound(new Date(w.end.getTime() + 1_800_000));
          added.push(...late.map(expectedKey), ...fresh.map(expectedKey));
        }
      } while (cursor);
      expect(new Set(seen).size).toBe(seen.length);
      for (const k of before) expect(seen).toContain(k);
      const extra = seen.filter((k) => !before.has(k));
      for (const k of extra) expect(added).toContain(k);
      // Rows added after the cursor's position are seen; those before it are not repeated into the page stream.
      expect(extra.length).toBeGreaterThan(0);
    });
  });
});
