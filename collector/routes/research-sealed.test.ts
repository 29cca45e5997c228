/**
 * The research API does not tell the censor which messages are canaries: until a
 * canary's deadline has passed and none of its outcomes is pending, no endpoint or
 * export (JSON, NDJSON, CSV) carries its text, nonce, received text or term set, and
 * no term-set filter or grouping matches it. Afterwards everything is there.
 */
import type { FastifyInstance } from 'fastify';
import { expect, it } from 'vitest';
import type { OutcomeRecord } from '../../protocol/research.ts';
import { finaliseOutcomes } from '../outcomes.ts';
import { describeEachDb } from '../test-support/db.ts';
import { signedPost } from '../test-support/probe.ts';
import { type Canary, onAppWorld, receivedEvent, sentEvent, type World } from '../test-support/world.ts';

const EVENTS = '/probe/v1/events';

describeEachDb('research API: sealed canaries', (getDb) => {
  let app: FastifyInstance;
  let w: World;
  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
  });

  async function report(c: Canary, recipients: ('bob' | 'carol')[]) {
    const sent = await signedPost(app, w.us, EVENTS, { protocol: 1, events: [sentEvent(w, c)] });
    expect(sent.statusCode).toBe(200);
    const got = await signedPost(app, w.cn, EVENTS, {
      protocol: 1,
      events: recipients.map((r) => receivedEvent(w, r, c)),
    });
    expect(got.statusCode).toBe(200);
  }

  const get = async (url: string, accept = 'application/json') => {
    const res = await app.inject({ method: 'GET', url, headers: { accept } });
    expect(res.statusCode, res.body).toBe(200);
    return res.body;
  };

  /** Every public place a canary could show up, as raw bodies. */
  async function everyBody(campaign: string): Promise<Record<string, string>> {
    const q = `campaign=${campaign}`;
    const terms = encodeURIComponent(JSON.stringify(['天气']));
    return {
      outcomes: await get(`/api/v1/outcomes?${q}`),
      ndjson: await get(`/api/v1/export?${q}`),
      csv: await get(`/api/v1/export?${q}&format=csv`),
      byTerms: await get(`/api/v1/outcomes?${q}&terms=${terms}`),
      aggregation: await get(`/api/v1/aggregation?${q}&group_by=term_set`),
      aggregationCsv: await get(`/api/v1/aggregation?${q}&group_by=term_set,minute&format=csv`),
      termSets: await get(`/api/v1/term-sets?${q}`),
      termSetsCsv: await get(`/api/v1/term-sets?${q}`, 'text/csv'),
    };
  }

  const outcomesOf = (body: string, c: Canary) =>
    (JSON.parse(body) as { outcomes: OutcomeRecord[] }).outcomes.filter((o) => o.canary_id === c.id);

  function expectSealed(bodies: Record<string, string>, c: Canary) {
    for (const [where, body] of Object.entries(bodies)) {
      expect(body, where).not.toContain(c.nonce);
      expect(body, where).not.toContain(c.text);
    }
    const rows = outcomesOf(bodies.outcomes!, c);
    expect(rows.length).toBe(2);
    for (const o of rows) {
      expect(o.text).toBeNull();
      expect(o.received_text).toBeNull();
      expect(o.term_set).toBeNull();
      expect(o.terms_key).toBeNull();
    }
    expect(outcomesOf(bodies.byTerms!, c)).toEqual([]);
    const ndjson = bodies
      .ndjson!.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as OutcomeRecord)
      .filter((o) => o.canary_id === c.id);
    expect(ndjson.map((o) => [o.text, o.term_set, o.received_text])).toEqual([
      [null, null, null],
      [null, null, null],
    ]);
  }

  function expectRevealed(bodies: Record<string, string>, c: Canary) {
    const rows = outcomesOf(bodies.outcomes!, c);
    expect(rows.length).toBe(2);
    for (const o of rows) {
      expect(o.text).toBe(c.text);
      expect(o.term_set).toEqual(['天气']);
      expect(o.terms_key).toBe('["天气"]');
    }
    expect(outcomesOf(bodies.byTerms!, c).length).toBe(2);
    expect(bodies.ndjson).toContain(c.nonce);
    expect(bodies.csv).toContain(c.nonce);
  }

  it('hides text, nonce and term set until the deadline has passed and no outcome is pending', async () => {
    // Final from the start: deadline passed, both receipts in.
    const done = await w.makeCanary({
      sendAt: new Date(Date.now() - 600_000),
      deadlineAt: new Date(Date.now() - 540_000),
    });
    await report(done, ['bob', 'carol']);
    // Wide enough for a loaded machine to read every endpoint before it passes.
    const deadlineAt = new Date(Date.now() + 10_000);
    // Every receipt in, deadline not passed yet.
    const early = await w.makeCanary({ deadlineAt });
    await report(early, ['bob', 'carol']);
    // Carol's receipt never comes: pending until the sweep, even past the deadline.
    const open = await w.makeCanary({ deadlineAt });
    await report(open, ['bob']);

    let bodies = await everyBody(w.campaignId);
    expectRevealed(bodies, done);
    expectSealed(bodies, early);
    expectSealed(bodies, open);
    // Aggregates count the sealed canaries, but in a group without a term set.
    const agg = JSON.parse(bodies.aggregation!) as {
      rows: { keys: (string | null)[]; n: number; pending: number }[];
    };
    expect(agg.rows.find((r) => r.keys[0] === null)).toMatchObject({ pending: 1 });
    expect(agg.rows.find((r) => r.keys[0] === '["天气"]')).toMatchObject({ n: 2, pending: 0 });
    const termSets = JSON.parse(bodies.termSets!) as {
      term_sets: { terms_key: string; test: { n: number } }[];
    };
    expect(termSets.term_sets).toEqual([expect.objectContaining({ terms_key: '["天气"]' })]);
    expect(termSets.term_sets[0]!.test.n).toBe(2);

    await new Promise((r) => setTimeout(r, Math.max(0, deadlineAt.getTime() - Date.now()) + 300));
    bodies = await everyBody(w.campaignId);
    expectRevealed(bodies, early);
    // Past its deadline, but carol's outcome is still pending: still sealed.
    expectSealed(bodies, open);

    expect(await finaliseOutcomes(getDb().db, new Date())).toBeGreaterThanOrEqual(1);
    bodies = await everyBody(w.campaignId);
    expectRevealed(bodies, open);
    const carol = outcomesOf(bodies.outcomes!, open).find(
      (o) => o.recipient_account_id === w.accountIds.carol,
    );
    expect(carol).toMatchObject({ status: 'missing', received_text: null });
    const bob = outcomesOf(bodies.outcomes!, open).find((o) => o.recipient_account_id === w.accountIds.bob);
    expect(bob).toMatchObject({ status: 'delivered', received_text: open.text });
  });

  it('documents the sealed fields in the OpenAPI schema', async () => {
    const doc = JSON.parse(await get('/docs/json')) as {
      components?: unknown;
      paths: Record<string, { get: { description?: string } }>;
    };
    expect(doc.paths['/api/v1/outcomes']!.get.description).toMatch(/sealed/);
    expect(doc.paths['/api/v1/export']!.get.description).toMatch(/sealed/);
    expect(JSON.stringify(doc)).toMatch(/null while the canary is sealed/);
  });
});
