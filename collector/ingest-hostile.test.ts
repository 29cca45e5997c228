import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../protocol/index.ts';
import { isDataException, sqlState } from './db/errors.ts';
import { countRows, eventIdsOfRequest, probesOfEventId, rawEvent } from './db/inspect.ts';
import { outcomesForCanary } from './db/outcomes.ts';
import { COPIES_BOUND, UNKNOWN_NONCE_BOUND } from './ingest.ts';
import { researchErrorBody } from './routes/research.ts';
import { describeEachDb } from './test-support/db.ts';
import { account, checkin, enrollProbe, signedPost, type TestProbe } from './test-support/probe.ts';
import { newNonce, onAppWorld, receivedEvent, sentEvent, type World } from './test-support/world.ts';

const EVENTS = '/probe/v1/events';

type Result = { index: number; event_id?: string; status: string; reason?: string };

describeEachDb('ingest on hostile ground', (getDb) => {
  let app: FastifyInstance;
  let w: World;

  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
  });

  const post = async (probe: TestProbe, events: unknown[], requestId = randomUUID()) => {
    const res = await signedPost(app, probe, EVENTS, { protocol: 1, events }, { requestId });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().results as Result[];
  };

  /** A counter's value at /metrics (0 before its first count). */
  const metric = async (name: string) => {
    const body = (await app.inject({ url: '/metrics' })).body;
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(body);
    return m ? Number(m[1]) : 0;
  };

  /** A probe of its own with one account in a conversation of its own. */
  const newProbe = async (name: string) => {
    const probe = await enrollProbe(app, { country: 'RU' });
    const handle = `${name}-${randomBytes(4).toString('hex')}`;
    const room = `room-${handle}`;
    await checkin(
      app,
      probe,
      [account('testbed', handle, 'RU')],
      [{ platform: 'testbed', ref: room, kind: 'group', members: [handle] }],
    );
    return { probe, handle, room };
  };

  describe('values the database cannot hold', () => {
    it('refuses each one per event naming the field, and stores its neighbours once', async () => {
      const c = await w.makeCanary();
      // Text cut at LIMITS.textChars UTF-16 units through an emoji: a lone high surrogate.
      const cut = `${'a'.repeat(LIMITS.textChars - 1)}😀`.slice(0, LIMITS.textChars);
      const bob = (extra: Record<string, unknown>) => ({ ...receivedEvent(w, 'bob', c), ...extra });
      const dayMs = 24 * 60 * 60 * 1000;
      const events = [
        receivedEvent(w, 'bob', c),
        bob({ text: `hello ${c.nonce} \u0000 world` }),
        bob({ text: cut }),
        bob({ at: '0000-01-01T00:00:00Z' }),
        bob({ at: '2026-06-30T23:59:60Z' }),
        bob({ at: new Date(Date.now() + 2 * dayMs).toISOString() }),
        bob({ clock_offset_ms: 3e12 }),
        bob({ adapter: { name: 'testbed', version: '0.0.1', client_version: 'x\u0000' } }),
        bob({ from: 'eve\udc00' }),
        bob({ platform_message_id: '\u0000' }),
        { ...sentEvent(w, c), account: `${w.handles.alice}\u0000` },
        receivedEvent(w, 'carol', c),
        // Valid, though Postgres reads no UTC offset beyond ±15:59: stored as its instant.
        bob({ at: new Date(Date.now() + 16 * 3_600_000).toISOString().replace('Z', '+16:00') }),
      ];
      const requestId = randomUUID();
      const results = await post(w.cn, events, requestId);
      expect(results.map((r) => r.status)).toEqual([
        'stored',
        ...Array(events.length - 3).fill('refused'),
        'stored',
        'stored',
      ]);
      expect(results.slice(1, -2).map((r) => r.reason)).toEqual([
        '/events/1/text: contains NUL',
        '/events/2/text: contains a lone UTF-16 surrogate',
        '/events/3/at: is before 2000-01-01',
        '/events/4/at: is not a real instant (e.g. a leap second)',
        '/events/5/at: is more than a day ahead of the collector clock',
        '/events/6/clock_offset_ms: must be a clock offset of at most a day either way',
        '/events/7/adapter/client_version: contains NUL',
        '/events/8/from: contains a lone UTF-16 surrogate',
        '/events/9/platform_message_id: contains NUL',
        '/events/10/account: contains NUL',
      ]);
      expect(await eventIdsOfRequest(getDb().db, requestId)).toEqual(
        [events[0]!.event_id, events.at(-2)!.event_id, events.at(-1)!.event_id].sort(),
      );
    });

    it('answers a batch of nothing but such values with 200 and refusals, never 5xx', async () => {
      const c = await w.makeCanary();
      const before = await countRows(getDb().db);
      const res = await signedPost(app, w.cn, EVENTS, {
        protocol: 1,
        events: [{ ...receivedEvent(w, 'bob', c), text: '\u0000' }],
      });
      expect(res.statusCode).toBe(200);
      expect(res.json().results[0]).toMatchObject({
        status: 'refused',
        reason: '/events/0/text: contains NUL',
      });
      expect((await countRows(getDb().db)).events).toBe(before.events);
    });

    it('refuses an item that is no event object alone and stores its neighbours', async () => {
      const c = await w.makeCanary();
      const events = [null, receivedEvent(w, 'bob', c), 42, 'text', [], receivedEvent(w, 'carol', c)];
      const requestId = randomUUID();
      const results = await post(w.cn, events, requestId);
      expect(results.map((r) => r.status)).toEqual([
        'refused',
        'stored',
        'refused',
        'refused',
        'refused',
        'stored',
      ]);
      for (const i of [0, 2, 3, 4]) expect(results[i]!.reason).toMatch(new RegExp(`^/events/${i}`));
      expect(await eventIdsOfRequest(getDb().db, requestId)).toEqual(
        [(events[1] as { event_id: string }).event_id, (events[5] as { event_id: string }).event_id].sort(),
      );
    });
  });

  describe('a value only Postgres refuses', () => {
    it('splits the batch, refuses the failing events with a reason and stores the others exactly once', async () => {
      const { db } = getDb();
      const canaries = await Promise.all(Array.from({ length: 6 }, () => w.makeCanary()));
      await post(
        w.us,
        canaries.map((c) => sentEvent(w, c)),
      );
      // A constraint the collector does not know of: Postgres alone refuses these rows.
      await db.execute(
        sql.raw(`alter table events add constraint events_test_poison
          check (coalesce(raw->>'text', '') not like '%poison-pill%')`),
      );
      try {
        const receipts = canaries.map((c, i) =>
          receivedEvent(w, 'bob', c, i === 2 || i === 4 ? { text: `${c.text} poison-pill` } : {}),
        );
        const requestId = randomUUID();
        const first = await post(w.cn, receipts, requestId);
        expect(first.map((r) => r.status)).toEqual([
          'stored',
          'stored',
          'refused',
          'stored',
          'refused',
          'stored',
        ]);
        expect(first[2]!.reason).toMatch(/^\/events\/2: the database refused it \(SQLSTATE 23514/);
        expect(first[4]!.reason).toMatch(/^\/events\/4: the database refused it \(SQLSTATE 23514/);
        const good = receipts.filter((_, i) => i !== 2 && i !== 4).map((r) => r.event_id);
        expect(await eventIdsOfRequest(db, requestId)).toEqual([...good].sort());
        for (const id of good) expect(await probesOfEventId(db, id)).toEqual([w.cn.id]);
        // The stored neighbours made their outcomes; the refused ones made none.
        const bobOf = async (i: number) =>
          (await outcomesForCanary(db, canaries[i]!.id)).find(
            (o) => o.recipientAccountId === w.accountIds.bob,
          )?.status;
        expect(await bobOf(0)).toBe('delivered');
        expect(await bobOf(2)).toBe('pending');
        // Sent again (the probe retries): the stored ones are duplicates, the others refused again.
        const again = await post(w.cn, receipts);
        expect(again.map((r) => r.status)).toEqual([
          'duplicate',
          'duplicate',
          'refused',
          'duplicate',
          'refused',
          'duplicate',
        ]);
        for (const id of good) expect(await probesOfEventId(db, id)).toEqual([w.cn.id]);
      } finally {
        await db.execute(sql.raw('alter table events drop constraint events_test_poison'));
      }
    });
  });

  describe('receipts are evidence only from recipients', () => {
    it("keeps a forged receipt of a probe not in the conversation, or the sender's own, out of the outcomes", async () => {
      const { db } = getDb();
      const { probe: evil, handle: mallory } = await newProbe('mallory');
      const sendAt = new Date(Date.now() - 120_000);
      const c = await w.makeCanary({ sendAt, deadlineAt: new Date(sendAt.getTime() + 60_000) });
      await post(w.us, [sentEvent(w, c, { at: sendAt })]);
      const statuses = async () =>
        Object.fromEntries((await outcomesForCanary(db, c.id)).map((o) => [o.recipientAccountId, o.status]));
      expect(await statuses()).toEqual({ [w.accountIds.bob]: 'missing', [w.accountIds.carol]: 'missing' });

      // Its own registered account, a valid signature, the canary's nonce and text, in time.
      const inTime = new Date(sendAt.getTime() + 1000);
      const forged = { ...receivedEvent(w, 'bob', c, { at: inTime }), account: mallory };
      expect((await post(evil, [forged]))[0]!.status).toBe('stored');
      const own = { ...receivedEvent(w, 'bob', c, { at: inTime }), account: w.handles.alice };
      expect((await post(w.us, [own]))[0]!.status).toBe('stored');

      expect(await statuses()).toEqual({ [w.accountIds.bob]: 'missing', [w.accountIds.carol]: 'missing' });
      // A real recipient's receipt still counts.
      await post(w.cn, [receivedEvent(w, 'bob', c, { at: inTime })]);
      expect((await statuses())[w.accountIds.bob]).toBe('delivered');
    });
  });

  describe('event ids are scoped per probe', () => {
    it("stores a probe's events even when another probe posted their ids first, each once", async () => {
      const { db } = getDb();
      const c1 = await w.makeCanary();
      const c2 = await w.makeCanary();
      const ids = [randomUUID(), randomUUID()];
      // Probe B (cn) pre-claims the ids A (us) will use.
      const claimed = await post(w.cn, [
        receivedEvent(w, 'bob', c1, { eventId: ids[0] }),
        receivedEvent(w, 'bob', c2, { eventId: ids[1] }),
      ]);
      expect(claimed.map((r) => r.status)).toEqual(['stored', 'stored']);
      const sends = [sentEvent(w, c1, { eventId: ids[0] }), sentEvent(w, c2, { eventId: ids[1] })];
      expect((await post(w.us, sends)).map((r) => r.status)).toEqual(['stored', 'stored']);
      expect((await post(w.us, sends)).map((r) => r.status)).toEqual(['duplicate', 'duplicate']);
      for (const id of ids) expect(await probesOfEventId(db, id)).toEqual([w.cn.id, w.us.id].sort());
      const bob = (await outcomesForCanary(db, c1.id)).find((o) => o.recipientAccountId === w.accountIds.bob);
      expect(bob?.status).toBe('delivered');
    });
  });

  describe('receipts of nonces that are no canary of ours', () => {
    it('keeps them bounded (text cut, a count per probe and hour), acknowledges the rest, and counts both', async () => {
      const { db } = getDb();
      const { probe, handle, room } = await newProbe('lookalike');
      const lookAlike = (text?: string) => {
        const nonce = newNonce();
        return {
          type: 'received' as const,
          event_id: randomUUID(),
          platform: 'testbed',
          account: handle,
          conversation: room,
          at: new Date().toISOString(),
          clock_offset_ms: 0,
          adapter: { name: 'testbed', version: '0.0.1' },
          nonce,
          text: text ?? `hello ${nonce} world`,
        };
      };
      const totalBefore = await metric('sd_unknown_nonce_receipts_total');
      const droppedBefore = await metric('sd_unknown_nonce_receipts_dropped_total');

      const long = lookAlike(`${'é'.repeat(300)} sdabcdef123456 ${'x'.repeat(5000)}`);
      expect((await post(probe, [long]))[0]!.status).toBe('stored');
      const kept = await rawEvent(db, probe.id, long.event_id);
      const keptText = kept?.text as string;
      expect(Buffer.byteLength(keptText, 'utf8')).toBeLessThanOrEqual(UNKNOWN_NONCE_BOUND.textBytes);
      expect(long.text.startsWith(keptText)).toBe(true);
      expect(keptText).toBe('é'.repeat(UNKNOWN_NONCE_BOUND.textBytes / 2));
      expect(kept?.text_truncated).toBe(true);

      const room1 = UNKNOWN_NONCE_BOUND.perProbe - 1;
      const batch = Array.from({ length: room1 + 5 }, () => lookAlike());
      const results = await post(probe, batch);
      expect(results.filter((r) => r.status === 'stored')).toHaveLength(room1);
      const ignored = results.filter((r) => r.status === 'ignored');
      expect(ignored.map((r) => r.index)).toEqual([room1, room1 + 1, room1 + 2, room1 + 3, room1 + 4]);
      expect(ignored[0]!.reason).toMatch(new RegExp(`^/events/${room1}/nonce: no canary of ours`));
      // Past the bound nothing more is kept, and a real receipt of a canary is not held back.
      const c = await w.makeCanary();
      const more = await post(probe, [lookAlike(), { ...receivedEvent(w, 'bob', c), account: handle }]);
      expect(more.map((r) => r.status)).toEqual(['ignored', 'stored']);
      expect(await rawEvent(db, probe.id, batch.at(-1)!.event_id)).toBeUndefined();

      expect((await metric('sd_unknown_nonce_receipts_total')) - totalBefore).toBe(1 + room1 + 5 + 1);
      expect((await metric('sd_unknown_nonce_receipts_dropped_total')) - droppedBefore).toBe(6);
      // Another probe's bound is its own.
      expect(
        (await post(w.cn, [{ ...lookAlike(), account: w.handles.bob, conversation: w.group }]))[0]!.status,
      ).toBe('stored');
    });
  });

  describe('copies of a real canary (posted again by a member, or a send reported again)', () => {
    it('keeps the first few per canary, account and type, acknowledges the rest, and the outcome stands', async () => {
      const { db } = getDb();
      const bound = COPIES_BOUND.perCanaryAccountType;
      const before = await metric('sd_canary_copies_dropped_total');
      const sendAt = new Date(Date.now() - 5_000);
      const c = await w.makeCanary({ sendAt });
      expect((await post(w.us, [sentEvent(w, c, { at: sendAt })]))[0]!.status).toBe('stored');
      const first = new Date(sendAt.getTime() + 1_000);
      const copies = Array.from({ length: bound + 3 }, (_, i) =>
        receivedEvent(w, 'bob', c, { at: new Date(first.getTime() + i * 10) }),
      );
      const results = await post(w.cn, copies);
      expect(results.filter((r) => r.status === 'stored')).toHaveLength(bound);
      const ignored = results.filter((r) => r.status === 'ignored');
      expect(ignored.map((r) => r.index)).toEqual([bound, bound + 1, bound + 2]);
      expect(ignored[0]!.reason).toMatch(/reported 8 received events for this canary already/);
      for (const r of ignored) expect(await rawEvent(db, w.cn.id, r.event_id!)).toBeUndefined();
      // Another recipient's receipt is its own count, and more sends under new ids are bounded too.
      expect((await post(w.cn, [receivedEvent(w, 'carol', c)]))[0]!.status).toBe('stored');
      const sends = Array.from({ length: bound }, () => sentEvent(w, c, { at: sendAt }));
      expect((await post(w.us, sends)).filter((r) => r.status === 'ignored')).toHaveLength(1);
      const bob = (await outcomesForCanary(db, c.id)).find((o) => o.recipientAccountId === w.accountIds.bob);
      expect(bob?.status).toBe('delivered');
      expect(bob?.latencyMs).toBe(1_000);
      expect((await metric('sd_canary_copies_dropped_total')) - before).toBe(4);
    });
  });

  describe('research API parameters Postgres would refuse', () => {
    const ROUTES = [
      '/api/v1/outcomes',
      '/api/v1/export',
      '/api/v1/aggregation?group_by=day',
      '/api/v1/latency',
      '/api/v1/term-sets',
      '/api/v1/findings',
    ];
    const get = (url: string) => app.inject({ url, remoteAddress: '192.0.2.1' });
    const withParam = (route: string, param: string) => `${route}${route.includes('?') ? '&' : '?'}${param}`;

    it.each([
      ['a leap second', 'from=2026-06-30T23:59:60Z'],
      ['year 0000', 'from=0000-01-01T00:00:00Z'],
      ['a year past 2999', 'to=9999-12-31T00:00:00Z'],
      ['a NUL in a term', `terms=${encodeURIComponent(JSON.stringify(['a\u0000']))}`],
      ['a lone surrogate in a term', `terms=${encodeURIComponent('["\\ud800"]')}`],
    ])('answers 400 to %s on every outcome and finding route', async (_what, param) => {
      for (const route of ROUTES) {
        const res = await get(withParam(route, param));
        expect(res.statusCode, `${route} ${param}: ${res.body}`).toBe(400);
        expect(res.json().code).toBe('SD_ERR_VALIDATION');
        expect(res.json().message).toMatch(/querystring\/(from|to|terms)/);
      }
    });

    it('answers 400 to a cursor naming an instant that does not exist', async () => {
      const cursor = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const id = randomUUID();
      const outcomes = await get(
        `/api/v1/outcomes?cursor=${cursor({ v: 1, t: '2026-02-30T00:00:00.000000Z', c: id, r: id, o: 'asc' })}`,
      );
      expect(outcomes.statusCode).toBe(400);
      expect(outcomes.json().code).toBe('SD_ERR_VALIDATION');
      const findings = await get(
        `/api/v1/findings?cursor=${cursor({ v: 1, w: '0000-01-01T00:00:00.000000Z', i: id })}`,
      );
      expect(findings.statusCode).toBe(400);
      expect(findings.json().code).toBe('SD_ERR_VALIDATION');
    });

    it('maps a data exception Postgres raises in a research query to 400 SD_ERR_QUERY_VALUE', async () => {
      const err = await getDb()
        .db.execute(sql`select ${'2026-06-30T23:59:61Z'}::timestamptz`)
        .then(
          () => undefined,
          (e: unknown) => e as Error,
        );
      expect(err).toBeInstanceOf(Error);
      expect(isDataException(err)).toBe(true);
      expect(sqlState(err)).toMatch(/^22/);
      expect(researchErrorBody(err!)).toMatchObject({ statusCode: 400, code: 'SD_ERR_QUERY_VALUE' });
      expect(researchErrorBody(new Error('a fault of ours'))).toMatchObject({
        statusCode: 500,
        code: 'SD_ERR_INTERNAL',
      });
    });
  });
});
