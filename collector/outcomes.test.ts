import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { FactEvent } from './db/outcomes.ts';
import { outcomesForCanary } from './db/outcomes.ts';
import { deriveOutcomes, finaliseOutcomes } from './outcomes.ts';
import { describeEachDb } from './test-support/db.ts';
import { signedPost } from './test-support/probe.ts';
import { onAppWorld, receivedEvent, rejectedEvent, sentEvent, type World } from './test-support/world.ts';

const T = Date.parse('2026-06-04T00:00:00.000Z');
const canary = {
  id: 'c1',
  nonce: 'sdaaaaaaaaaaaa',
  senderAccountId: 'alice',
  text: 'hi sdaaaaaaaaaaaa',
  deadlineMs: T + 60_000,
};
const ev = (
  type: FactEvent['type'],
  accountId: string,
  atMs: number,
  clockOffsetMs = 0,
  text: string | null = canary.text,
): FactEvent => ({
  eventId: `${type}-${accountId}-${atMs}`,
  canaryId: 'c1',
  type,
  accountId,
  atMs,
  clockOffsetMs,
  text,
  failure: type === 'rejected' ? 'notice_shown' : null,
  notice: type === 'rejected' ? 'blocked' : null,
  inConversation: true,
});

describe('deriveOutcomes', () => {
  const statuses = (events: FactEvent[], now = T + 1000) =>
    Object.fromEntries(
      deriveOutcomes({ canary, recipients: ['bob', 'carol'], events }, now).map((o) => [
        o.recipientAccountId,
        o.status,
      ]),
    );

  it('creates no outcome before the sender reports', () => {
    expect(deriveOutcomes({ canary, recipients: ['bob'], events: [ev('received', 'bob', T)] }, T)).toEqual(
      [],
    );
  });

  it('applies both clock offsets to latency and to the deadline', () => {
    // Sender clock 2 s behind, recipient clock 3 s ahead: true latency 5 s − 2 s... computed on the collector clock.
    const out = deriveOutcomes(
      {
        canary,
        recipients: ['bob'],
        events: [ev('sent', 'alice', T - 2000, 2000), ev('received', 'bob', T + 8000, -3000)],
      },
      T + 10_000,
    );
    expect(out[0]).toMatchObject({ status: 'delivered', latencyMs: 5000, receivedAtMs: T + 5000 });
    // The same receipt with its raw clock past the deadline but corrected within it is delivered.
    const edge = deriveOutcomes(
      {
        canary,
        recipients: ['bob'],
        events: [ev('sent', 'alice', T), ev('received', 'bob', T + 61_000, -2000)],
      },
      T + 120_000,
    );
    expect(edge[0]).toMatchObject({ status: 'delivered', latencyMs: 59_000 });
  });

  it("counts no receipt reported in another conversation (a copy of the canary's text posted elsewhere)", () => {
    const copy = { ...ev('received', 'bob', T + 1000), inConversation: false };
    expect(statuses([ev('sent', 'alice', T), copy], T + 61_000)).toEqual({
      bob: 'missing',
      carol: 'missing',
    });
    expect(statuses([ev('sent', 'alice', T), copy, ev('received', 'bob', T + 2000)])).toEqual({
      bob: 'delivered',
      carol: 'pending',
    });
  });

  it('is pending before the deadline and missing after it', () => {
    expect(statuses([ev('sent', 'alice', T)], T + 1000)).toEqual({ bob: 'pending', carol: 'pending' });
    expect(statuses([ev('sent', 'alice', T)], T + 61_000)).toEqual({ bob: 'missing', carol: 'missing' });
  });

  it('marks a late receipt delayed and a changed text altered (after NFC)', () => {
    const decomposed = canary.text.replace('hi', 'he\u0301');
    const composedCanary = { ...canary, text: 'h\u00e9 sdaaaaaaaaaaaa' };
    const out = deriveOutcomes(
      {
        canary: composedCanary,
        recipients: ['bob', 'carol'],
        events: [
          ev('sent', 'alice', T, 0, composedCanary.text),
          ev('received', 'bob', T + 1000, 0, decomposed),
          ev('received', 'carol', T + 1000, 0, 'h*** sdaaaaaaaaaaaa'),
        ],
      },
      T + 2000,
    );
    expect(out.map((o) => o.status)).toEqual(['delivered', 'altered']);
    expect(statuses([ev('sent', 'alice', T), ev('received', 'bob', T + 90_000)], T + 100_000)).toEqual({
      bob: 'delayed',
      carol: 'missing',
    });
  });

  it('never turns a finalised missing outcome back into pending', () => {
    const out = deriveOutcomes(
      {
        canary,
        recipients: ['bob'],
        events: [ev('sent', 'alice', T)],
        previous: new Map([['bob', 'missing']]),
      },
      T + 1000,
    );
    expect(out[0]?.status).toBe('missing');
  });

  it('rejects every recipient on a rejected send', () => {
    expect(statuses([ev('rejected', 'alice', T)])).toEqual({ bob: 'rejected', carol: 'rejected' });
    expect(statuses([ev('failed', 'alice', T)])).toEqual({ bob: 'failed', carol: 'failed' });
  });
});

describeEachDb('outcomes through ingest', (getDb) => {
  let app: FastifyInstance;
  let w: World;
  const EVENTS = '/probe/v1/events';

  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
  });

  const post = async (probe: World['us'], events: unknown[]) => {
    const res = await signedPost(app, probe, EVENTS, { protocol: 1, events });
    expect(res.statusCode).toBe(200);
    for (const r of res.json().results) expect(r.status).toBe('stored');
  };
  const byRecipient = async (canaryId: string) =>
    Object.fromEntries((await outcomesForCanary(getDb().db, canaryId)).map((o) => [o.recipientAccountId, o]));

  it('delivers with latency corrected for both clock offsets', async () => {
    const now = Date.now();
    const c = await w.makeCanary({ sendAt: new Date(now) });
    await post(w.us, [sentEvent(w, c, { at: new Date(now - 1500), offsetMs: 1500 })]);
    let o = await byRecipient(c.id);
    expect(o[w.accountIds.bob]?.status).toBe('pending');
    expect(o[w.accountIds.carol]?.status).toBe('pending');
    expect(o[w.accountIds.alice]).toBeUndefined();
    await post(w.cn, [receivedEvent(w, 'bob', c, { at: new Date(now + 2700), offsetMs: -500 })]);
    o = await byRecipient(c.id);
    expect(o[w.accountIds.bob]).toMatchObject({ status: 'delivered', latencyMs: 2200 });
    expect(o[w.accountIds.carol]?.status).toBe('pending');
  });

  it('resolves a receipt that arrives before its send', async () => {
    const now = Date.now();
    const c = await w.makeCanary({ sendAt: new Date(now) });
    await post(w.cn, [receivedEvent(w, 'carol', c, { at: new Date(now + 400) })]);
    expect(await outcomesForCanary(getDb().db, c.id)).toEqual([]);
    await post(w.us, [sentEvent(w, c, { at: new Date(now) })]);
    const o = await byRecipient(c.id);
    expect(o[w.accountIds.carol]).toMatchObject({ status: 'delivered', latencyMs: 400 });
    expect(o[w.accountIds.bob]?.status).toBe('pending');
  });

  it('finalises missing after the deadline and turns a late receipt into delayed', async () => {
    const now = Date.now();
    const c = await w.makeCanary({ sendAt: new Date(now - 120_000), deadlineAt: new Date(now - 60_000) });
    await post(w.us, [sentEvent(w, c, { at: new Date(now - 120_000) })]);
    // Sent after its deadline had passed: derived straight to missing.
    let o = await byRecipient(c.id);
    expect(o[w.accountIds.bob]?.status).toBe('missing');

    const d = await w.makeCanary({ sendAt: new Date(now), deadlineAt: new Date(now + 30_000) });
    await post(w.us, [sentEvent(w, d, { at: new Date(now) })]);
    expect((await byRecipient(d.id))[w.accountIds.bob]?.status).toBe('pending');
    expect(await finaliseOutcomes(getDb().db, new Date(now + 10_000))).toBe(0);
    expect(await finaliseOutcomes(getDb().db, new Date(now + 31_000))).toBeGreaterThanOrEqual(2);
    o = await byRecipient(d.id);
    expect(o[w.accountIds.bob]?.status).toBe('missing');
    await post(w.cn, [receivedEvent(w, 'bob', d, { at: new Date(now + 45_000) })]);
    o = await byRecipient(d.id);
    expect(o[w.accountIds.bob]).toMatchObject({ status: 'delayed', latencyMs: 45_000 });
    expect(o[w.accountIds.carol]?.status).toBe('missing');
  });

  it('marks a receipt with different text altered and keeps the text seen', async () => {
    const c = await w.makeCanary();
    await post(w.us, [sentEvent(w, c)]);
    const masked = c.text.replace('天气', '***');
    await post(w.cn, [receivedEvent(w, 'bob', c, { text: masked })]);
    const o = await byRecipient(c.id);
    expect(o[w.accountIds.bob]).toMatchObject({ status: 'altered', receivedText: masked });
  });

  it('resolves sends and receipts posted in parallel batches', async () => {
    const now = Date.now();
    const list = await Promise.all([1, 2, 3, 4, 5, 6].map(() => w.makeCanary({ sendAt: new Date(now) })));
    await Promise.all(
      list.flatMap((c) => [
        post(w.us, [sentEvent(w, c, { at: new Date(now) })]),
        post(w.cn, [receivedEvent(w, 'bob', c, { at: new Date(now + 100) })]),
      ]),
    );
    for (const c of list) {
      const o = await byRecipient(c.id);
      expect(o[w.accountIds.bob]).toMatchObject({ status: 'delivered', latencyMs: 100 });
    }
  });

  it('rejects every recipient when the sender saw a notice', async () => {
    const c = await w.makeCanary();
    await post(w.us, [rejectedEvent(w, c)]);
    const o = await byRecipient(c.id);
    expect(o[w.accountIds.bob]?.status).toBe('rejected');
    expect(o[w.accountIds.carol]?.status).toBe('rejected');
  });
});
