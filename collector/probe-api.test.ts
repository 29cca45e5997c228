import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../protocol/index.ts';
import { publicKeyToBase64 } from '../protocol/signing.ts';
import { countRows, eventIdsOfRequest } from './db/inspect.ts';
import { describeEachDb } from './test-support/db.ts';
import {
  account,
  checkin,
  checkinBody,
  signedHeaders,
  signedPost,
  TEST_ADMIN_TOKEN,
} from './test-support/probe.ts';
import { onAppWorld, receivedEvent, sentEvent, type World } from './test-support/world.ts';

const EVENTS = '/probe/v1/events';

describeEachDb('probe API', (getDb) => {
  let app: FastifyInstance;
  let w: World;

  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
  });

  const counts = () => countRows(getDb().db);

  describe('ingest', () => {
    it('stores a signed batch once when it is sent twice', async () => {
      const c = await w.makeCanary();
      const sent = { protocol: 1, events: [sentEvent(w, c)] };
      const before = await counts();
      const a = await signedPost(app, w.us, EVENTS, sent);
      expect(a.statusCode).toBe(200);
      expect(a.json().results).toEqual([{ index: 0, event_id: sent.events[0]!.event_id, status: 'stored' }]);
      const b = await signedPost(app, w.us, EVENTS, sent);
      expect(b.statusCode).toBe(200);
      expect(b.json().results[0].status).toBe('duplicate');
      const after = await counts();
      expect(after.events - before.events).toBe(1);
    });

    it('marks a repeated event id inside one batch as duplicate', async () => {
      const c = await w.makeCanary();
      const e = sentEvent(w, c);
      const res = await signedPost(app, w.us, EVENTS, { protocol: 1, events: [e, e] });
      expect(res.json().results.map((r: { status: string }) => r.status)).toEqual(['stored', 'duplicate']);
    });

    it('refuses a malformed event naming the field and stores the valid ones beside it', async () => {
      const c = await w.makeCanary();
      const good1 = receivedEvent(w, 'bob', c);
      const bad = { ...receivedEvent(w, 'carol', c), at: 'yesterday' };
      const good2 = receivedEvent(w, 'carol', c);
      const requestId = randomUUID();
      const res = await signedPost(
        app,
        w.cn,
        EVENTS,
        { protocol: 1, events: [good1, bad, good2] },
        { requestId },
      );
      expect(res.statusCode).toBe(200);
      const results = res.json().results as { status: string; reason?: string }[];
      expect(results.map((r) => r.status)).toEqual(['stored', 'refused', 'stored']);
      expect(results[1]!.reason).toMatch(/^\/events\/1\/at: /);
      const storedIds = await eventIdsOfRequest(getDb().db, requestId);
      expect(storedIds).toEqual([good1.event_id, good2.event_id].sort());
    });

    it('refuses an event of an unknown type or about an unknown canary, naming the field', async () => {
      const c = await w.makeCanary();
      const res = await signedPost(app, w.us, EVENTS, {
        protocol: 1,
        events: [
          { ...sentEvent(w, c), type: 'exploded' },
          { ...sentEvent(w, c), canary_id: randomUUID() },
          { ...sentEvent(w, c), extra: 1 },
        ],
      });
      const reasons = (res.json().results as { reason: string }[]).map((r) => r.reason);
      expect(reasons[0]).toMatch(/^\/events\/0\/type: /);
      expect(reasons[1]).toMatch(/^\/events\/1\/canary_id: unknown canary/);
      expect(reasons[2]).toMatch(/^\/events\/2\/extra: is not allowed/);
    });
  });

  describe('authentication', () => {
    const batchFor = async () => ({ protocol: 1, events: [sentEvent(w, await w.makeCanary())] });

    async function expectRejected(
      status: number,
      code: string,
      send: () => Promise<{ statusCode: number; json(): unknown }>,
    ) {
      const before = await counts();
      const res = await send();
      expect(res.statusCode).toBe(status);
      expect((res.json() as { code: string }).code).toBe(code);
      expect(await counts()).toEqual(before);
    }

    it('rejects an unsigned request with 401 and stores nothing', async () => {
      const body = await batchFor();
      await expectRejected(401, 'SD_ERR_AUTH_MISSING', () =>
        app.inject({ method: 'POST', url: EVENTS, payload: body }),
      );
      await expectRejected(401, 'SD_ERR_AUTH_MISSING', () =>
        signedPost(app, w.us, EVENTS, body, { omit: true }),
      );
    });

    it('rejects a forged signature with 401 and stores nothing', async () => {
      const body = await batchFor();
      const other = generateKeyPairSync('ed25519').privateKey;
      await expectRejected(401, 'SD_ERR_AUTH_BAD_SIGNATURE', () =>
        signedPost(app, w.us, EVENTS, body, { key: other }),
      );
    });

    it('rejects a body changed after signing with 401 and stores nothing', async () => {
      const body = await batchFor();
      const signedBody = JSON.stringify({ protocol: 1, events: [] });
      await expectRejected(401, 'SD_ERR_AUTH_BAD_SIGNATURE', () =>
        signedPost(app, w.us, EVENTS, body, { signedBody }),
      );
    });

    it('rejects a stale or future timestamp with 401 and stores nothing', async () => {
      const body = await batchFor();
      const late = Date.now() - LIMITS.signatureWindowMs - 1000;
      const early = Date.now() + LIMITS.signatureWindowMs + 1000;
      await expectRejected(401, 'SD_ERR_AUTH_STALE', () =>
        signedPost(app, w.us, EVENTS, body, { timestamp: late }),
      );
      await expectRejected(401, 'SD_ERR_AUTH_STALE', () =>
        signedPost(app, w.us, EVENTS, body, { timestamp: early }),
      );
    });

    it('rejects a replayed request with 401 and stores nothing more', async () => {
      const body = JSON.stringify(await batchFor());
      const headers = signedHeaders(w.us, EVENTS, body);
      const first = await app.inject({ method: 'POST', url: EVENTS, headers, payload: body });
      expect(first.statusCode).toBe(200);
      await expectRejected(401, 'SD_ERR_AUTH_REPLAY', () =>
        app.inject({ method: 'POST', url: EVENTS, headers, payload: body }),
      );
    });

    it('rejects an unknown probe with 401', async () => {
      const body = await batchFor();
      const ghost = { ...w.us, id: randomUUID() };
      await expectRejected(401, 'SD_ERR_AUTH_UNKNOWN_PROBE', () => signedPost(app, ghost, EVENTS, body));
    });

    it("rejects with 403 a batch naming nothing but another probe's accounts and stores nothing", async () => {
      const c = await w.makeCanary();
      // The CN probe reports a send by the US probe's account.
      const body = { protocol: 1, events: [sentEvent(w, c), sentEvent(w, c)] };
      await expectRejected(403, 'SD_ERR_FOREIGN_ACCOUNT', () => signedPost(app, w.cn, EVENTS, body));
    });

    it("refuses an event naming another probe's account alone and stores its neighbours", async () => {
      const c = await w.makeCanary();
      // The CN probe reports its own receipt and a send by the US probe's account.
      const own = receivedEvent(w, 'bob', c);
      const requestId = randomUUID();
      const res = await signedPost(
        app,
        w.cn,
        EVENTS,
        { protocol: 1, events: [own, sentEvent(w, c)] },
        { requestId },
      );
      expect(res.statusCode).toBe(200);
      const results = res.json().results as {
        index: number;
        event_id: string;
        status: string;
        reason?: string;
      }[];
      expect(results.map((r) => r.status)).toEqual(['stored', 'refused']);
      expect(results[1]!.reason).toBe(
        '/events/1/account: held by another probe, not by the one that signed this batch',
      );
      expect(res.body).not.toContain(w.handles.alice);
      expect(await eventIdsOfRequest(getDb().db, requestId)).toEqual([own.event_id]);
    });

    it("rejects with 403 a check-in claiming another probe's account", async () => {
      const body = checkinBody([account('testbed', w.handles.alice, 'US')], []);
      await expectRejected(403, 'SD_ERR_FOREIGN_ACCOUNT', () =>
        signedPost(app, w.cn, '/probe/v1/checkin', body),
      );
    });
  });

  describe('bad input', () => {
    it('answers 400 to a body that is not JSON and leaves the database unchanged', async () => {
      const before = await counts();
      const res = await signedPost(app, w.us, EVENTS, '{"protocol":1,"events":[');
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe('SD_ERR_BAD_JSON');
      expect(await counts()).toEqual(before);
    });

    it('answers 400 naming the field to a malformed envelope and leaves the database unchanged', async () => {
      const before = await counts();
      const res = await signedPost(app, w.us, EVENTS, { protocol: 2, events: [] });
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe('SD_ERR_VALIDATION');
      expect(res.json().message).toMatch(/\/protocol/);
      const tooMany = await signedPost(app, w.us, EVENTS, { protocol: 1, events: [] });
      expect(tooMany.json().message).toMatch(/\/events/);
      expect(await counts()).toEqual(before);
    });

    it('answers 415 to an unsupported content type and 404 to an unknown route, with stable codes', async () => {
      const xml = await app.inject({
        method: 'POST',
        url: EVENTS,
        headers: { ...signedHeaders(w.us, EVENTS, '<x/>'), 'content-type': 'application/xml' },
        payload: '<x/>',
      });
      expect(xml.statusCode).toBe(415);
      expect(xml.json().code).toBe('SD_ERR_MEDIA_TYPE');
      const missing = await app.inject({ method: 'GET', url: '/probe/v1/nothing' });
      expect(missing.statusCode).toBe(404);
      expect(missing.json().code).toBe('SD_ERR_NOT_FOUND');
    });

    it('answers 413 to an oversize body', async () => {
      const huge = JSON.stringify({ protocol: 1, events: [{ pad: 'x'.repeat(LIMITS.probeBodyBytes) }] });
      const res = await signedPost(app, w.us, EVENTS, huge);
      expect(res.statusCode).toBe(413);
      expect(res.json().code).toBe('SD_ERR_BODY_TOO_LARGE');
    });
  });

  describe('register', () => {
    it('accepts an enrollment token once and refuses it after', async () => {
      const tok = await app.inject({
        method: 'POST',
        url: '/admin/v1/enrollment-tokens',
        headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
        payload: { uses: 1 },
      });
      const { token } = tok.json() as { token: string };
      const reg = (key = generateKeyPairSync('ed25519').publicKey) =>
        app.inject({
          method: 'POST',
          url: '/probe/v1/register',
          payload: {
            protocol: 1,
            enrollment_token: token,
            public_key: publicKeyToBase64(key),
            country: 'TW',
            asn: 3462,
            software_version: 'test',
          },
        });
      expect((await reg()).statusCode).toBe(201);
      const again = await reg();
      expect(again.statusCode).toBe(401);
      expect(again.json().code).toBe('SD_ERR_ENROLLMENT_TOKEN');
    });
  });

  describe('check-in', () => {
    it('hands out due canaries until the probe reports them, with NTP timestamps', async () => {
      const c = await w.makeCanary({ sendAt: new Date(Date.now() + 10_000) });
      const later = await w.makeCanary({ sendAt: new Date(Date.now() + 3_600_000) });
      const t0 = Date.now();
      const res = await checkin(app, w.us, [account('testbed', w.handles.alice, 'US')], []);
      const body = res.json() as { t1: number; t2: number; canaries: { canary_id: string; nonce: string }[] };
      expect(body.t1).toBeGreaterThanOrEqual(t0);
      expect(body.t2).toBeGreaterThanOrEqual(body.t1);
      const ids = body.canaries.map((x) => x.canary_id);
      expect(ids).toContain(c.id);
      expect(ids).not.toContain(later.id);
      // Not reported yet: a restarted probe gets it again.
      const again = await checkin(app, w.us, [account('testbed', w.handles.alice, 'US')], []);
      expect(again.json().canaries.map((x: { canary_id: string }) => x.canary_id)).toContain(c.id);
      await signedPost(app, w.us, EVENTS, { protocol: 1, events: [sentEvent(w, c)] });
      const after = await checkin(app, w.us, [account('testbed', w.handles.alice, 'US')], []);
      expect(after.json().canaries.map((x: { canary_id: string }) => x.canary_id)).not.toContain(c.id);
      // Canaries of the other probe's accounts are never handed to this one.
      const cn = await checkin(app, w.cn, [], []);
      expect(cn.json().canaries).toEqual([]);
    });

    it('hands nothing to a probe whose data folder is full, and the same canary once it has space', async () => {
      const c = await w.makeCanary({ sendAt: new Date(Date.now() + 10_000) });
      const accounts = [account('testbed', w.handles.alice, 'US')];
      const full = { state: 'full', since: new Date().toISOString(), code: 'ENOSPC' };
      const res = await signedPost(app, w.us, '/probe/v1/checkin', {
        ...checkinBody(accounts, []),
        storage: full,
      });
      expect(res.statusCode).toBe(200);
      expect(res.json().canaries).toEqual([]);
      // A storage value out of the protocol is refused as a whole request, naming the field.
      const bad = await signedPost(app, w.us, '/probe/v1/checkin', {
        ...checkinBody(accounts, []),
        storage: { ...full, code: 'EIO' },
      });
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toContain('storage');
      const ok = await signedPost(app, w.us, '/probe/v1/checkin', {
        ...checkinBody(accounts, []),
        storage: { state: 'ok' },
      });
      expect(ok.json().canaries.map((x: { canary_id: string }) => x.canary_id)).toContain(c.id);
    });
  });
});

describeEachDb('probe API rate limit', (getDb) => {
  let app: FastifyInstance;
  let w: World;
  // buildWorld enrols two probes (two registrations from this address) and checks each in once
  onAppWorld(
    getDb,
    (a, world) => {
      app = a;
      w = world;
    },
    { probeRateLimit: { max: 4, timeWindowMs: 60_000 } },
  );

  it('answers 429 to a probe past its quota and stores nothing, while another probe goes on', async () => {
    const body = checkinBody([account('testbed', w.handles.alice, 'US')], []);
    const answers: number[] = [];
    for (let i = 0; i < 4; i++)
      answers.push((await signedPost(app, w.us, '/probe/v1/checkin', body)).statusCode);
    expect(answers).toEqual([200, 200, 200, 429]);
    const before = await countRows(getDb().db);
    const refused = await signedPost(app, w.us, EVENTS, {
      protocol: 1,
      events: [sentEvent(w, await w.makeCanary())],
    });
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ code: 'SD_ERR_RATE_LIMITED' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect((await countRows(getDb().db)).events).toBe(before.events);
    // the quota is the probe's own, not the address's: the CN probe still checks in
    const cn = checkinBody([account('testbed', w.handles.bob, 'CN')], []);
    expect((await signedPost(app, w.cn, '/probe/v1/checkin', cn)).statusCode).toBe(200);
  });

  it('limits enrolment per address, before a probe has an id', async () => {
    const register = () =>
      app.inject({
        method: 'POST',
        url: '/probe/v1/register',
        payload: {
          protocol: 1,
          enrollment_token: 'not-a-token-guess-0123456789',
          public_key: publicKeyToBase64(generateKeyPairSync('ed25519').publicKey),
          country: 'US',
          asn: 64500,
          software_version: '0.0.0',
        },
      });
    const codes: number[] = [];
    for (let i = 0; i < 3; i++) codes.push((await register()).statusCode);
    expect(codes).toEqual([401, 401, 429]);
  });
});

describeEachDb('probe API check-in that starts a long planning', (getDb) => {
  let app: FastifyInstance;
  let w: World;
  const asked: { probeId: string; done: boolean }[] = [];
  // round planning (collector/server.ts) takes seconds on a large campaign
  onAppWorld(
    getDb,
    (a, world) => {
      app = a;
      w = world;
    },
    {
      // returns the planning's promise: a route that awaited the hook would wait for it
      onCheckin: (_now, probeId) => {
        const planning = { probeId, done: false };
        asked.push(planning);
        return new Promise((r) => setTimeout(r, 3000)).then(() => {
          planning.done = true;
        });
      },
    },
  );

  it('answers without waiting for the planning it starts', async () => {
    asked.length = 0;
    const now = Date.now();
    const due = await w.makeCanary({ sendAt: new Date(now), deadlineAt: new Date(now + 30_000) });
    const res = await checkin(app, w.us, [account('testbed', w.handles.alice, 'US')], []);
    expect(res.statusCode).toBe(200);
    const ids = (res.json().canaries as { canary_id: string }[]).map((c) => c.canary_id);
    expect(ids).toContain(due.id);
    // the planning was started, for this probe's check-in, and has not finished
    expect(asked).toEqual([{ probeId: w.us.id, done: false }]);
  });
});
