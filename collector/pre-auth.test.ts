/**
 * Trust costs nothing before it is earned: the admin token and the probe signature
 * headers are checked before a body is read, a probe body's signature before it is
 * parsed; refused requests and the admin API are rate limited per address HMAC; a 403
 * names no other probe's account.
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { buildApp } from './app.ts';
import { describeEachDb } from './test-support/db.ts';
import {
  account,
  checkinBody,
  signedHeaders,
  signedPost,
  TEST_ADMIN_TOKEN,
  TEST_HASH_KEY,
} from './test-support/probe.ts';
import { onAppWorld, receivedEvent, sentEvent, type World } from './test-support/world.ts';

const MB = 1024 * 1024;
const EVENTS = '/probe/v1/events';

interface EarlyAnswer {
  /** The status line and headers, then the body. */
  answer: string;
  /** Body bytes written before the answer came. */
  sent: number;
}

/**
 * Announces a `declared`-byte body, writes only its first 64 KiB, and waits for the answer:
 * a server that reads (or buffers) the body before answering never answers.
 */
function postWithoutBody(port: number, path: string, headers: Record<string, string>, declared: number) {
  return new Promise<EarlyAnswer>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    let bytes = Buffer.alloc(0);
    let sent = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer while the body was unsent (${sent} bytes written): ${answer}`));
    }, 10_000);
    socket.on('error', reject);
    socket.on('data', (d) => {
      bytes = Buffer.concat([bytes, d]);
      answer = bytes.toString('utf8');
      const end = bytes.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(answer)?.[1];
      if (end >= 0 && length && bytes.length >= end + 4 + Number(length)) {
        clearTimeout(timer);
        socket.destroy();
        resolve({ answer, sent });
      }
    });
    socket.on('connect', () => {
      const head = Object.entries({ ...headers, 'content-length': String(declared), host: 'localhost' })
        .map(([k, v]) => `${k}: ${v}`)
        .join('\r\n');
      socket.write(`POST ${path} HTTP/1.1\r\n${head}\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      socket.write(chunk);
      sent = chunk.length;
    });
  });
}

const config = { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 };
const codeOf = (body: string) =>
  (JSON.parse(body.slice(body.indexOf('\r\n\r\n') + 4)) as { code: string }).code;

describeEachDb('requests refused before their body is read', (getDb) => {
  let app: FastifyInstance;
  let w: World;
  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
  });
  let port = 0;
  let listening: FastifyInstance;
  beforeAll(async () => {
    listening = await buildApp({ db: getDb().db, config });
    await listening.listen({ port: 0, host: '127.0.0.1' });
    port = (listening.server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await listening.close();
  });

  it('answers an admin request with a wrong token 401 while its 10 MB body is still unsent', async () => {
    const { answer, sent } = await postWithoutBody(
      port,
      '/admin/v1/term-lists?name=x',
      { authorization: 'Bearer wrong', 'content-type': 'text/plain' },
      10 * MB,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(codeOf(answer)).toBe('SD_ERR_ADMIN_TOKEN');
    expect(sent).toBeLessThan(10 * MB);
  });

  it('answers an unsigned 10 MB probe request 401 while its body is still unsent', async () => {
    const { answer } = await postWithoutBody(port, EVENTS, { 'content-type': 'application/json' }, 10 * MB);
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(codeOf(answer)).toBe('SD_ERR_AUTH_MISSING');
  });

  it('answers a request from an unknown probe or with a stale clock before reading its body', async () => {
    const ghost = { ...w.us, id: randomUUID() };
    const unknown = await postWithoutBody(port, EVENTS, signedHeaders(ghost, EVENTS, '{}'), 900_000);
    expect(codeOf(unknown.answer)).toBe('SD_ERR_AUTH_UNKNOWN_PROBE');
    const stale = signedHeaders(w.us, EVENTS, '{}', { timestamp: Date.now() - 3_600_000 });
    expect(codeOf((await postWithoutBody(port, EVENTS, stale, 900_000)).answer)).toBe('SD_ERR_AUTH_STALE');
  });

  it('verifies the signature over the raw bytes before JSON.parse sees them', async () => {
    const marker = `marker-${randomUUID()}`;
    const body = JSON.stringify({ protocol: 1, events: [], marker });
    const parse = vi.spyOn(JSON, 'parse');
    try {
      const forged = await signedPost(app, w.us, EVENTS, body, { signedBody: '{"protocol":1,"events":[]}' });
      expect(forged.statusCode).toBe(401);
      expect(forged.json().code).toBe('SD_ERR_AUTH_BAD_SIGNATURE');
      const parsedIt = () =>
        parse.mock.calls.some(([text]) => typeof text === 'string' && text.includes(marker));
      expect(parsedIt()).toBe(false);
      // The same body, signed: parsed (so the spy does see the parser).
      const signed = await signedPost(app, w.us, EVENTS, body);
      expect(signed.statusCode).not.toBe(401);
      expect(parsedIt()).toBe(true);
    } finally {
      parse.mockRestore();
    }
  });

  it('answers 403 to a foreign account without naming it', async () => {
    const c = await w.makeCanary();
    const events = await signedPost(app, w.cn, EVENTS, { protocol: 1, events: [sentEvent(w, c)] });
    expect(events.statusCode).toBe(403);
    expect(events.json().code).toBe('SD_ERR_FOREIGN_ACCOUNT');
    expect(events.body).not.toContain(w.handles.alice);
    // Beside its own events, a foreign one is refused alone, still without the name.
    const mixed = await signedPost(app, w.cn, EVENTS, {
      protocol: 1,
      events: [receivedEvent(w, 'bob', c), sentEvent(w, c)],
    });
    expect(mixed.statusCode).toBe(200);
    expect(mixed.json().results.map((r: { status: string }) => r.status)).toEqual(['stored', 'refused']);
    expect(mixed.body).not.toContain(w.handles.alice);
    const claim = await signedPost(
      app,
      w.cn,
      '/probe/v1/checkin',
      checkinBody([account('testbed', w.handles.alice, 'US')], []),
    );
    expect(claim.statusCode).toBe(403);
    expect(claim.json().code).toBe('SD_ERR_FOREIGN_ACCOUNT');
    expect(claim.body).not.toContain(w.handles.alice);
  });
});

describeEachDb('rate limits before trust', (getDb) => {
  let w: World;
  let app: FastifyInstance;
  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
  });

  it('refuses every request from an address after too many refused ones, 429 with retry-after', async () => {
    const limited = await buildApp({
      db: getDb().db,
      config,
      authFailureLimit: { max: 3, timeWindowMs: 60_000 },
    });
    try {
      const from = (remoteAddress: string, headers: Record<string, string>) =>
        limited.inject({ method: 'GET', url: '/admin/v1/probes', headers, remoteAddress });
      const bad = { authorization: 'Bearer wrong' };
      const good = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
      expect((await from('203.0.113.7', good)).statusCode).toBe(200);
      for (let i = 0; i < 3; i++) expect((await from('203.0.113.7', bad)).statusCode).toBe(401);
      // A probe request failing from the same address counts too; now the address is out.
      const blocked = await from('203.0.113.7', good);
      expect(blocked.statusCode).toBe(429);
      expect(blocked.json().code).toBe('SD_ERR_RATE_LIMITED');
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
      const probeBlocked = await limited.inject({
        method: 'POST',
        url: EVENTS,
        headers: signedHeaders(w.us, EVENTS, '{"protocol":1,"events":[]}'),
        payload: '{"protocol":1,"events":[]}',
        remoteAddress: '203.0.113.7',
      });
      expect(probeBlocked.statusCode).toBe(429);
      // Another address is not affected; unsigned probe requests count as refused.
      expect((await from('198.51.100.9', good)).statusCode).toBe(200);
      for (let i = 0; i < 3; i++) {
        const res = await limited.inject({
          method: 'POST',
          url: EVENTS,
          headers: { 'content-type': 'application/json' },
          payload: '{}',
          remoteAddress: '198.51.100.9',
        });
        expect(res.statusCode).toBe(401);
      }
      expect((await from('198.51.100.9', good)).statusCode).toBe(429);
    } finally {
      await limited.close();
    }
  });

  it('rate limits the admin API per address', async () => {
    const limited = await buildApp({
      db: getDb().db,
      config,
      adminRateLimit: { max: 2, timeWindowMs: 60_000 },
    });
    try {
      const get = () =>
        limited.inject({
          method: 'GET',
          url: '/admin/v1/campaigns',
          headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
        });
      expect((await get()).statusCode).toBe(200);
      expect((await get()).statusCode).toBe(200);
      const res = await get();
      expect(res.statusCode).toBe(429);
      expect(res.json().code).toBe('SD_ERR_RATE_LIMITED');
      expect(res.headers['retry-after']).toBeDefined();
    } finally {
      await limited.close();
    }
  });

  it('keeps answering a well-behaved probe', async () => {
    const c = await w.makeCanary();
    const res = await signedPost(app, w.us, EVENTS, { protocol: 1, events: [sentEvent(w, c)] });
    expect(res.statusCode, res.body).toBe(200);
  });
});
