/**
 * A researcher cannot slow the collector for others: research queries run under a
 * statement timeout (503 SD_ERR_QUERY_TIMEOUT with retry-after; enforced by a Postgres
 * server, ignored by PGlite), and only a few exports stream at once (503 SD_ERR_BUSY).
 */
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApp } from '../app.ts';
import { rows } from '../db/open.ts';
import { isStatementTimeout, withStatementTimeout } from '../db/research-timeout.ts';
import { describeEachDb } from '../test-support/db.ts';
import { signedPost, TEST_ADMIN_TOKEN, TEST_HASH_KEY } from '../test-support/probe.ts';
import { onAppWorld, receivedEvent, sentEvent, type World } from '../test-support/world.ts';

const config = { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeEachDb('research query limits', (getDb) => {
  let w: World;
  onAppWorld(getDb, (_a, world) => {
    w = world;
  });
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildApp({ db: getDb().db, config, researchStatementTimeoutMs: 300 });
    // Some final outcomes to export.
    for (let i = 0; i < 3; i++) {
      const c = await w.makeCanary({
        sendAt: new Date(Date.now() - 600_000 + i),
        deadlineAt: new Date(Date.now() - 540_000),
      });
      await signedPost(app, w.us, '/probe/v1/events', { protocol: 1, events: [sentEvent(w, c)] });
      await signedPost(app, w.cn, '/probe/v1/events', {
        protocol: 1,
        events: [receivedEvent(w, 'bob', c), receivedEvent(w, 'carol', c)],
      });
    }
  });
  afterAll(async () => {
    await app.close();
  });

  const exportOf = (from = app) =>
    from.inject({ method: 'GET', url: `/api/v1/export?campaign=${w.campaignId}` });

  it('stops a slow statement on a server; PGlite accepts the setting and ignores it', async () => {
    const database = getDb();
    const slow = withStatementTimeout(database.db, 100, (tx) => rows(tx, sql`select pg_sleep(0.5)`));
    if (database.driver === 'pg') {
      const err = await slow.then(
        () => null,
        (e: unknown) => e,
      );
      expect(isStatementTimeout(err)).toBe(true);
    } else {
      // docs/errors.md SD_ERR_QUERY_TIMEOUT: embedded PGlite cannot cancel a statement.
      await expect(slow).resolves.toHaveLength(1);
    }
    // The setting is local to its transaction: the connection's next user has none.
    const [after] = await rows<{ statement_timeout: string }>(database.db, sql`show statement_timeout`);
    expect(after?.statement_timeout).toBe('0');
  });

  it('answers 503 SD_ERR_QUERY_TIMEOUT with retry-after when a research query runs too long (server)', async () => {
    if (getDb().driver !== 'pg') return; // PGlite: see above
    // A table lock held elsewhere makes every research read wait past its timeout.
    await getDb().db.transaction(async (tx) => {
      await tx.execute(sql`lock table outcomes in access exclusive mode`);
      for (const url of [
        `/api/v1/outcomes?campaign=${w.campaignId}`,
        `/api/v1/aggregation?group_by=day&campaign=${w.campaignId}`,
        `/api/v1/export?campaign=${w.campaignId}`,
      ]) {
        const res = await app.inject({ method: 'GET', url });
        expect(res.statusCode, url).toBe(503);
        expect(res.json()).toMatchObject({ statusCode: 503, code: 'SD_ERR_QUERY_TIMEOUT' });
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      }
    });
    // The export slot the timed-out export held is free again.
    expect((await exportOf()).statusCode).toBe(200);
  });

  it('refuses an export beyond the concurrent cap with 503 SD_ERR_BUSY, and frees the slot after', async () => {
    // The cap as an operator sets it: SILENTDROP_EXPORT_MAX_CONCURRENT, read into the config.
    const capped = await buildApp({ db: getDb().db, config: { ...config, exportMaxConcurrent: 1 } });
    try {
      let first: ReturnType<typeof exportOf> | undefined;
      await getDb().db.transaction(async (tx) => {
        // Holds the first export in its first read (a server lock; PGlite: its one connection).
        await tx.execute(sql`lock table outcomes in access exclusive mode`);
        first = exportOf(capped);
        await sleep(1000);
        const second = await exportOf(capped);
        expect(second.statusCode).toBe(503);
        expect(second.json().code).toBe('SD_ERR_BUSY');
        expect(Number(second.headers['retry-after'])).toBeGreaterThan(0);
      });
      const res = await first!;
      expect(res.statusCode).toBe(200);
      expect(res.body.trim().split('\n').length).toBe(6);
      // The slot is free again.
      expect((await exportOf(capped)).statusCode).toBe(200);
    } finally {
      await capped.close();
    }
  });
});
