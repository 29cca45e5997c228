import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from './app.ts';
import { loadConfig } from './config.ts';
import { findingsOfCampaign } from './db/findings.ts';
import { type Db, reclaimEventSpace, rows } from './db/open.ts';
import { lockCanaries } from './db/outcomes.ts';
import { recomputeCampaignFindings } from './findings.ts';
import { finaliseOutcomes } from './outcomes.ts';
import { pruneEvents, type RetentionRun, RetentionRunner, startRetentionJob } from './retention.ts';
import { type RunningCollector, startCollector } from './server.ts';
import { describeEachDb } from './test-support/db.ts';
import { signedPost, TEST_ADMIN_TOKEN, TEST_HASH_KEY } from './test-support/probe.ts';
import {
  buildWorld,
  type Canary,
  newNonce,
  onAppWorld,
  receivedEvent,
  rejectedEvent,
  sentEvent,
  type World,
} from './test-support/world.ts';

const DAY = 86_400_000;
const KEEP = { eventRetentionDays: 365, lookAlikeRetentionDays: 30 };
const silent = pino({ level: 'silent' });

describeEachDb('retention of raw events', (getDb) => {
  let app: FastifyInstance;
  let w: World;
  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
  });
  const db = (): Db => getDb().db;

  const post = async (probe: World['us'], events: unknown[]) => {
    const res = await signedPost(app, probe, '/probe/v1/events', { protocol: 1, events });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().results as { status: string; reason?: string }[];
  };
  const postStored = async (probe: World['us'], events: unknown[]) => {
    for (const r of await post(probe, events)) expect(r.status, r.reason).toBe('stored');
  };
  const eventCount = async (canaryId: string) =>
    (
      await rows<{ n: number }>(
        db(),
        sql`select count(*)::int as n from events where canary_id = ${canaryId}::uuid`,
      )
    )[0]?.n;
  const canaryRow = async (canaryId: string) =>
    (
      await rows<{ pruned: number | null; late: number | null }>(
        db(),
        sql`select (extract(epoch from events_pruned_at) * 1000)::float8 as pruned,
              (extract(epoch from late_events_at) * 1000)::float8 as late
            from canaries where id = ${canaryId}::uuid`,
      )
    )[0];
  const outcomesOf = (canaryId: string) =>
    rows<Record<string, unknown>>(
      db(),
      sql`select * from outcomes where canary_id = ${canaryId}::uuid order by recipient_account_id`,
    );
  /** Sent, and received by both recipients: every outcome final (delivered). */
  const deliveredCanary = async (input: Parameters<World['makeCanary']>[0] = {}): Promise<Canary> => {
    const c = await w.makeCanary(input);
    await postStored(w.us, [sentEvent(w, c)]);
    await postStored(w.cn, [receivedEvent(w, 'bob', c), receivedEvent(w, 'carol', c)]);
    return c;
  };

  it('deletes the events of canaries past the window whose outcomes are final; keeps recent and pending ones', async () => {
    const now = Date.now();
    const old = await deliveredCanary();
    const recent = await deliveredCanary({ deadlineAt: new Date(now + 2 * DAY) });
    const pending = await w.makeCanary();
    await postStored(w.us, [sentEvent(w, pending)]);
    const oldOutcomes = await outcomesOf(old.id);
    expect(oldOutcomes.map((o) => o.status)).toEqual(['delivered', 'delivered']);
    expect(await eventCount(old.id)).toBe(3);

    const run = await pruneEvents(db(), new Date(now + 366 * DAY), KEEP);
    expect(run.canaries).toBeGreaterThanOrEqual(1);
    expect(run.canaryEvents).toBeGreaterThanOrEqual(3);
    expect(await eventCount(old.id)).toBe(0);
    expect((await canaryRow(old.id))?.pruned).toBe(now + 366 * DAY);
    expect(await outcomesOf(old.id)).toEqual(oldOutcomes);
    // Deadline within the window: kept.
    expect(await eventCount(recent.id)).toBe(3);
    expect((await canaryRow(recent.id))?.pruned).toBeNull();
    // An outcome still pending (the finaliser has not run): kept until it is final.
    expect(await eventCount(pending.id)).toBe(1);
    expect((await canaryRow(pending.id))?.pruned).toBeNull();
  });

  it('leaves outcomes and findings as they were', async () => {
    const now = Date.now();
    for (let i = 0; i < 8; i++) {
      const pairId = randomUUID();
      const test = await w.makeCanary({ kind: 'test', pairId });
      await postStored(w.us, [rejectedEvent(w, test)]);
      await deliveredCanary({ kind: 'control', pairId });
    }
    const campaign = { id: w.campaignId, mode: 'monitor' as const, deadlineSeconds: 60 };
    const judgedAt = new Date(now + 2 * DAY);
    await finaliseOutcomes(db(), judgedAt);
    await recomputeCampaignFindings(db(), campaign, judgedAt);
    const findingsBefore = await findingsOfCampaign(db(), w.campaignId);
    expect(findingsBefore.some((f) => f.verdict === 'rejected')).toBe(true);
    const outcomesBefore = await rows(
      db(),
      sql`select o.* from outcomes o join canaries c on c.id = o.canary_id
          where c.campaign_id = ${w.campaignId}::uuid order by o.canary_id, o.recipient_account_id`,
    );

    await pruneEvents(db(), new Date(now + 400 * DAY), KEEP);
    const left = await rows<{ n: number }>(
      db(),
      sql`select count(*)::int as n from events e join canaries c on c.id = e.canary_id
          where c.campaign_id = ${w.campaignId}::uuid and c.deadline_at < ${new Date(now + DAY).toISOString()}::timestamptz`,
    );
    expect(left[0]?.n).toBe(0);
    expect(
      await rows(
        db(),
        sql`select o.* from outcomes o join canaries c on c.id = o.canary_id
            where c.campaign_id = ${w.campaignId}::uuid order by o.canary_id, o.recipient_account_id`,
      ),
    ).toEqual(outcomesBefore);
    await recomputeCampaignFindings(db(), campaign, judgedAt);
    const byId = (list: typeof findingsBefore) => [...list].sort((a, b) => a.id.localeCompare(b.id));
    expect(byId(await findingsOfCampaign(db(), w.campaignId))).toEqual(byId(findingsBefore));
  });

  it('stores a late or repeated event of a pruned canary without a 5xx, never changes its outcomes, and deletes it on the next run', async () => {
    const now = Date.now();
    const c = await w.makeCanary();
    const sent = sentEvent(w, c);
    await postStored(w.us, [sent]);
    await postStored(w.cn, [receivedEvent(w, 'bob', c)]);
    await finaliseOutcomes(db(), new Date(now + DAY));
    const before = await outcomesOf(c.id);
    expect(before.map((o) => o.status).sort()).toEqual(['delivered', 'missing']);
    await pruneEvents(db(), new Date(now + 366 * DAY), KEEP);
    expect(await eventCount(c.id)).toBe(0);
    const prunedAt = (await canaryRow(c.id))?.pruned;

    // Re-derived from what is stored now, each would change the outcomes: carol's edited copy
    // (missing → altered), bob's replaced text (delivered → altered), the send without bob's
    // first receipt (delivered → missing).
    const late = [
      receivedEvent(w, 'carol', c, { text: `${c.text} edited` }),
      receivedEvent(w, 'bob', c, { text: 'replaced' }),
    ];
    expect((await post(w.cn, late)).map((r) => r.status)).toEqual(['stored', 'stored']);
    expect((await post(w.us, [sent, sentEvent(w, c)])).map((r) => r.status)).toEqual(['stored', 'stored']);
    // A resend of what is stored now is a duplicate again.
    expect((await post(w.us, [sent])).map((r) => r.status)).toEqual(['duplicate']);
    expect(await outcomesOf(c.id)).toEqual(before);
    expect(await eventCount(c.id)).toBe(4);
    expect((await canaryRow(c.id))?.late).toBeGreaterThan(now - 60_000);

    const run = await pruneEvents(db(), new Date(now + 366 * DAY), KEEP);
    expect(run.lateEvents).toBeGreaterThanOrEqual(4);
    expect(await eventCount(c.id)).toBe(0);
    expect(await canaryRow(c.id)).toEqual({ pruned: prunedAt, late: null });
    expect(await outcomesOf(c.id)).toEqual(before);
  });

  it('deletes look-alike receipts older than their window and keeps newer ones', async () => {
    const lookAlike = () =>
      receivedEvent(w, 'bob', { id: randomUUID(), nonce: newNonce(), text: 'x', deadlineAt: new Date() });
    const oldOnes = [lookAlike(), lookAlike(), lookAlike()];
    const newOnes = [lookAlike(), lookAlike()];
    await postStored(w.cn, [...oldOnes, ...newOnes]);
    const ids = (list: { event_id: string }[]) => sql.param(list.map((e) => e.event_id));
    await db().execute(
      sql`update events set received_at = now() - interval '31 days' where event_id = any(${ids(oldOnes)}::uuid[])`,
    );
    await db().execute(
      sql`update events set received_at = now() - interval '29 days' where event_id = any(${ids(newOnes)}::uuid[])`,
    );
    const left = async () =>
      (
        await rows<{ event_id: string }>(
          db(),
          sql`select event_id from events where event_id = any(${ids([...oldOnes, ...newOnes])}::uuid[])`,
        )
      )
        .map((r) => r.event_id)
        .sort();
    // 0 keeps them forever.
    await pruneEvents(db(), new Date(), { eventRetentionDays: 365, lookAlikeRetentionDays: 0 });
    expect(await left()).toHaveLength(5);
    const run = await pruneEvents(db(), new Date(), KEEP, { lookAlikeBatchSize: 2 });
    expect(run.lookAlikes).toBeGreaterThanOrEqual(3);
    expect(await left()).toEqual(newOnes.map((e) => e.event_id).sort());
  });

  it('keeps every canary event with a retention of 0 days', async () => {
    const c = await deliveredCanary();
    const run = await pruneEvents(db(), new Date(Date.now() + 100 * 365 * DAY), {
      eventRetentionDays: 0,
      lookAlikeRetentionDays: 0,
    });
    expect(run.canaries).toBe(0);
    expect(await eventCount(c.id)).toBe(3);
    expect((await canaryRow(c.id))?.pruned).toBeNull();
  });

  it('prunes more canaries than one batch holds, across bounded batches', async () => {
    const list: Canary[] = [];
    for (let i = 0; i < 7; i++) {
      const c = await w.makeCanary();
      await postStored(w.us, [rejectedEvent(w, c)]);
      list.push(c);
    }
    const run = await pruneEvents(db(), new Date(Date.now() + 366 * DAY), KEEP, { batchSize: 3 });
    expect(run.canaries).toBeGreaterThanOrEqual(7);
    expect(run.batches).toBeGreaterThanOrEqual(3);
    for (const c of list) {
      expect(await eventCount(c.id)).toBe(0);
      expect((await canaryRow(c.id))?.pruned).not.toBeNull();
    }
    // Nothing left: a further run finds nothing.
    expect((await pruneEvents(db(), new Date(Date.now() + 366 * DAY), KEEP)).canaries).toBe(0);
  });

  it('skips a canary while its outcomes are being derived, and prunes it on a later run', async (ctx) => {
    // Needs two connections at once: the embedded database has one.
    if (getDb().driver === 'pglite') ctx.skip();
    const c = await deliveredCanary();
    const future = new Date(Date.now() + 366 * DAY);
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let taken = () => {};
    const lockTaken = new Promise<void>((r) => {
      taken = r;
    });
    const deriving = db().transaction(async (tx) => {
      await lockCanaries(tx, [c.id]);
      taken();
      await held;
    });
    await lockTaken;
    const run = await pruneEvents(db(), future, KEEP);
    expect(run.skipped).toBeGreaterThanOrEqual(1);
    expect(await eventCount(c.id)).toBe(3);
    expect((await canaryRow(c.id))?.pruned).toBeNull();
    release();
    await deriving;
    expect((await pruneEvents(db(), future, KEEP)).canaries).toBeGreaterThanOrEqual(1);
    expect(await eventCount(c.id)).toBe(0);
  });

  it('runs once on POST /admin/v1/retention/run, or only counts with dry_run', async () => {
    const c = await deliveredCanary();
    const lookAlike = receivedEvent(w, 'carol', {
      id: randomUUID(),
      nonce: newNonce(),
      text: 'x',
      deadlineAt: new Date(),
    });
    await postStored(w.cn, [lookAlike]);
    // Past the default windows (365 and 30 days) at the real clock.
    await db().execute(
      sql`update canaries set deadline_at = now() - interval '366 days' where id = ${c.id}::uuid`,
    );
    await db().execute(
      sql`update events set received_at = now() - interval '31 days' where event_id = ${lookAlike.event_id}::uuid`,
    );
    const run = (body: unknown) =>
      app.inject({
        method: 'POST',
        url: '/admin/v1/retention/run',
        headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
        payload: body as object,
      });
    const dry = await run({ dry_run: true });
    expect(dry.statusCode, dry.body).toBe(200);
    expect(dry.json()).toMatchObject({
      dry_run: true,
      event_retention_days: 365,
      lookalike_retention_days: 30,
      late_events: 0,
      capped: false,
    });
    expect(dry.json().canaries).toBeGreaterThanOrEqual(1);
    expect(dry.json().canary_events).toBeGreaterThanOrEqual(3);
    expect(dry.json().lookalike_receipts).toBeGreaterThanOrEqual(1);
    expect(await eventCount(c.id)).toBe(3);

    const done = await run({});
    expect(done.statusCode, done.body).toBe(200);
    expect(done.json()).toMatchObject({ dry_run: false, canaries: dry.json().canaries });
    expect(done.json().canary_events).toBe(dry.json().canary_events);
    expect(done.json().lookalike_receipts).toBe(dry.json().lookalike_receipts);
    expect(await eventCount(c.id)).toBe(0);
    expect((await run({ dry_run: true })).json()).toMatchObject({ canaries: 0, lookalike_receipts: 0 });
    expect((await run({ dry_run: 'yes' })).statusCode).toBe(400);
    expect((await run({ dry_run: true, extra: 1 })).statusCode).toBe(400);
    const anonymous = await app.inject({ method: 'POST', url: '/admin/v1/retention/run', payload: {} });
    expect(anonymous.statusCode).toBe(401);
  });

  it('runs on its own timer, one run at a time, counted at /metrics', async () => {
    const c = await deliveredCanary();
    let clockCalls = 0;
    const afterPruning: RetentionRun[] = [];
    const runner = new RetentionRunner(db(), KEEP, {
      // As server.ts does: vacuum on embedded PGlite (no autovacuum there), nothing on a server.
      afterPruning: async (run) => {
        afterPruning.push(run);
        await reclaimEventSpace(getDb());
      },
    });
    const { totals } = runner;
    const job = startRetentionJob(runner, silent, {
      firstRunAfterMs: 0,
      intervalMs: 5,
      now: () => {
        clockCalls++;
        return new Date(Date.now() + 366 * DAY);
      },
    });
    const until = Date.now() + 10_000;
    while (totals.runs < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    await job.stop();
    const runs = totals.runs;
    expect(runs).toBeGreaterThanOrEqual(3);
    expect(clockCalls).toBe(runs);
    expect(totals.failures).toBe(0);
    expect(await eventCount(c.id)).toBe(0);
    // Only after runs that deleted something (the first; the later ones found nothing).
    expect(afterPruning.length).toBeGreaterThanOrEqual(1);
    expect(afterPruning.length).toBeLessThan(runs);
    for (const r of afterPruning) expect(r.canaryEvents + r.lateEvents + r.lookAlikes).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 30));
    expect(totals.runs).toBe(runs);

    const withJob = await buildApp({
      db: db(),
      config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
      retention: runner,
    });
    const res = await withJob.inject({ method: 'GET', url: '/metrics' });
    await withJob.close();
    expect(res.body).toContain(`sd_events_pruned_total{kind="canary"} ${totals.canaryEvents}`);
    expect(res.body).toContain(`sd_events_pruned_total{kind="lookalike"} ${totals.lookAlikes}`);
    expect(res.body).toContain(`sd_canaries_pruned_total ${totals.canaries}`);
    expect(res.body).toContain(`sd_retention_runs_total{result="ok"} ${runs}`);
    expect(totals.canaryEvents).toBeGreaterThanOrEqual(3);
  });
});

describe('retention job without a database', () => {
  it('counts and logs a failed run, and tries again on the next', async () => {
    const broken = {
      transaction: async () => {
        throw new Error('database gone');
      },
    } as unknown as Db;
    const runner = new RetentionRunner(broken, KEEP);
    const { totals } = runner;
    const job = startRetentionJob(runner, silent, { firstRunAfterMs: 0, intervalMs: 5 });
    const until = Date.now() + 5000;
    while (totals.failures < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    await job.stop();
    expect(totals.failures).toBeGreaterThanOrEqual(2);
    expect(totals.runs).toBe(0);
  });
});

describe('a collector runs the retention job', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sd-retention-'));
  let collector: RunningCollector | undefined;
  afterAll(async () => {
    await collector?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('on its own timer with the configured windows, counted at /metrics, and stops on close', async () => {
    collector = await startCollector(
      loadConfig(
        { data: dataDir, port: 0 },
        {
          SILENTDROP_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
          SILENTDROP_HASH_KEY: TEST_HASH_KEY.toString('base64url'),
          SILENTDROP_LOOKALIKE_RETENTION_DAYS: '2',
          LOG_LEVEL: 'silent',
        },
      ),
      { logger: silent, retention: { firstRunAfterMs: 0, intervalMs: 50 } },
    );
    const { db } = collector.database;
    const w = await buildWorld(collector.app, db);
    const receipt = (eventId: string) =>
      receivedEvent(
        w,
        'bob',
        { id: randomUUID(), nonce: newNonce(), text: 'x', deadlineAt: new Date() },
        { eventId },
      );
    const [older, newer] = [randomUUID(), randomUUID()];
    const res = await signedPost(collector.app, w.cn, '/probe/v1/events', {
      protocol: 1,
      events: [receipt(older), receipt(newer)],
    });
    expect(res.statusCode).toBe(200);
    await db.execute(
      sql`update events set received_at = now() - interval '3 days' where event_id = ${older}::uuid`,
    );
    await db.execute(
      sql`update events set received_at = now() - interval '1 day' where event_id = ${newer}::uuid`,
    );
    const kept = async () =>
      (
        await rows<{ id: string }>(
          db,
          sql`select event_id as id from events where event_id in (${older}::uuid, ${newer}::uuid)`,
        )
      ).map((r) => r.id);
    const until = Date.now() + 10_000;
    while ((await kept()).length > 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(await kept()).toEqual([newer]);
    const metrics = await (await fetch(`${collector.url}/metrics`)).text();
    expect(metrics).toMatch(/^sd_events_pruned_total\{kind="lookalike"\} 1$/m);
    expect(metrics).toMatch(/^sd_retention_runs_total\{result="failed"\} 0$/m);
    await collector.close();
    collector = undefined;
    // Starting on an embedded database in a folder (migrations included) is most of it.
  }, 120_000);
});
