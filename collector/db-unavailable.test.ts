/**
 * The database server goes away while the collector runs (a restart, a network cut): every
 * request that needs it is answered 503 SD_ERR_DATABASE_UNAVAILABLE with `retry-after`
 * within seconds, never held and never a bare 500; work resumes when the server is back;
 * the collector still closes promptly while it is away.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type CuttableProxy, startProxy } from '../e2e/support/proxy.ts';
import { buildApp } from './app.ts';
import {
  type Database,
  openDatabase,
  PG_CLOSE_GRACE_MS,
  PG_CONNECT_TIMEOUT_MS,
  PG_WATCH_EVERY_MS,
  PG_WATCH_TIMEOUT_MS,
} from './db/open.ts';
import { describeOnServer } from './test-support/db.ts';
import { enrollProbe, signedPost, TEST_ADMIN_TOKEN, TEST_HASH_KEY } from './test-support/probe.ts';

describeOnServer('the database server unreachable', (getUrl) => {
  let proxy: CuttableProxy;
  let database: Database;
  let app: FastifyInstance;
  let closed = false;

  beforeAll(async () => {
    const direct = new URL(getUrl());
    proxy = await startProxy(`http://${direct.hostname}:${direct.port || 5432}`);
    const via = new URL(direct);
    via.port = new URL(proxy.url).port;
    database = await openDatabase({ databaseUrl: via.toString(), dataDir: '' });
    await database.migrate();
    app = await buildApp({
      db: database.db,
      config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
    });
  }, 60_000);
  afterAll(async () => {
    proxy.restore();
    if (!closed) {
      await app?.close();
      await database?.close();
    }
    await proxy?.close();
  });

  const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
  const requests = () => [
    app.inject({ url: '/healthz' }),
    app.inject({ url: '/api/v1/outcomes' }),
    app.inject({ url: '/admin/v1/probes', headers: admin }),
  ];

  it('answers 503 with a retry hint within the connection timeout, and recovers when it is back', async () => {
    const probe = await enrollProbe(app);
    for (const res of await Promise.all(requests())) expect(res.statusCode, res.body).toBe(200);

    proxy.cut();
    const started = Date.now();
    const answers = await Promise.all([
      ...requests(),
      signedPost(app, probe, '/probe/v1/events', { protocol: 1, events: [] }),
    ]);
    expect(Date.now() - started).toBeLessThan(PG_CONNECT_TIMEOUT_MS + 5_000);
    for (const res of answers) {
      expect(res.statusCode, res.body).toBe(503);
      expect(res.json().code).toBe('SD_ERR_DATABASE_UNAVAILABLE');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }

    proxy.restore();
    for (const res of await Promise.all(requests())) expect(res.statusCode, res.body).toBe(200);
  }, 60_000);

  it('closes within seconds while the server is away', async () => {
    proxy.cut();
    const pending = app.inject({ url: '/healthz' });
    const started = Date.now();
    closed = true;
    await app.close();
    await database.close();
    expect(Date.now() - started).toBeLessThan(PG_CONNECT_TIMEOUT_MS + 3_000);
    expect((await pending).statusCode).toBe(503);
  }, 30_000);
});

describeOnServer('the database server silent (packets dropped, connections left open)', (getUrl) => {
  let proxy: CuttableProxy;
  let database: Database;
  let app: FastifyInstance;

  beforeAll(async () => {
    const direct = new URL(getUrl());
    proxy = await startProxy(`http://${direct.hostname}:${direct.port || 5432}`);
    const via = new URL(direct);
    via.port = new URL(proxy.url).port;
    database = await openDatabase({ databaseUrl: via.toString(), dataDir: '' });
    await database.migrate();
    app = await buildApp({
      db: database.db,
      config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
    });
  }, 60_000);
  afterAll(async () => {
    await proxy?.close();
  });

  it('answers 503 within seconds on pooled connections that no longer answer, recovers, and closes within seconds', async () => {
    // Warm the pool: the next requests run on open connections that will go silent.
    for (const res of await Promise.all([0, 1, 2].map(() => app.inject({ url: '/healthz' })))) {
      expect(res.statusCode, res.body).toBe(200);
    }
    proxy.blackhole();
    const started = Date.now();
    const answers = await Promise.all([0, 1, 2].map(() => app.inject({ url: '/healthz' })));
    expect(Date.now() - started).toBeLessThan(PG_WATCH_EVERY_MS * 2 + PG_WATCH_TIMEOUT_MS + 4_000);
    for (const res of answers) {
      expect(res.statusCode, res.body).toBe(503);
      expect(res.json().code).toBe('SD_ERR_DATABASE_UNAVAILABLE');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }
    proxy.restore();
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);

    proxy.blackhole();
    const pending = app.inject({ url: '/healthz' });
    await new Promise((r) => setTimeout(r, 200));
    const closing = Date.now();
    await app.close();
    await database.close();
    expect(Date.now() - closing).toBeLessThan(
      PG_WATCH_EVERY_MS * 2 + PG_WATCH_TIMEOUT_MS + PG_CLOSE_GRACE_MS + 3_000,
    );
    expect((await pending).statusCode).toBe(503);
  }, 60_000);
});
