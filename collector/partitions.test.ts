import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { type Db, rows } from './db/open.ts';
import {
  dropEmptyEventPartitions,
  ensureAllPartitions,
  ensurePartitions,
  MONTHS_AHEAD,
  monthStart,
  partitionName,
  partitionsOf,
  sameDeadline,
  sameDeadlineInSubquery,
} from './db/partitions.ts';
import { OUTCOME_FROM, outcomeConditions, whereClause } from './db/research-filters.ts';
import { pruneEvents } from './retention.ts';
import { describeEachDb } from './test-support/db.ts';
import { signedPost } from './test-support/probe.ts';
import { newNonce, onAppWorld, receivedEvent, sentEvent, type World } from './test-support/world.ts';

const DAY = 86_400_000;

/** The database's clock (what received_at is stamped with). */
async function databaseNow(db: Db): Promise<Date> {
  const [r] = await rows<{ ms: number }>(db, sql`select (extract(epoch from now()) * 1000)::float8 as ms`);
  return new Date(r!.ms);
}

/** Posts events as `probe`; each one's status. */
async function postEvents(app: FastifyInstance, probe: World['us'], events: unknown[]): Promise<string[]> {
  const res = await signedPost(app, probe, '/probe/v1/events', { protocol: 1, events });
  expect(res.statusCode, res.body).toBe(200);
  return (res.json().results as { status: string }[]).map((r) => r.status);
}

describe('partition names and months', () => {
  it('names a month by its UTC year and month, whatever the local time zone says', () => {
    expect(partitionName(monthStart(new Date('2026-12-31T23:59:59.999Z')))).toBe('events_2026_12');
    expect(partitionName(monthStart(new Date('2027-01-01T00:00:00.000Z')))).toBe('events_2027_01');
    expect(monthStart(new Date('2026-12-06T10:00:00Z'), 2).toISOString()).toBe('2027-02-01T00:00:00.000Z');
    expect(monthStart(new Date('2026-03-31T10:00:00Z'), -1).toISOString()).toBe('2026-02-01T00:00:00.000Z');
  });
});

describeEachDb('monthly partitions of events', (getDb) => {
  let app: FastifyInstance;
  let w: World;
  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
  });
  const db = (): Db => getDb().db;

  const names = async () => (await partitionsOf(db(), 'events')).map((p) => p.name);
  const dbNow = () => databaseNow(db());
  /** Where a stored event is: its partition's name. */
  const partitionOf = async (eventId: string) =>
    (
      await rows<{ p: string }>(
        db(),
        sql`select tableoid::regclass::text as p from events where event_id = ${eventId}::uuid`,
      )
    ).map((r) => r.p);
  const post = (probe: World['us'], events: unknown[]) => postEvents(app, probe, events);

  it('are made by the migration for this month and the next ones, and a run of ensure makes nothing new', async () => {
    const now = await dbNow();
    const want = Array.from({ length: MONTHS_AHEAD + 1 }, (_, i) => partitionName(monthStart(now, i)));
    expect(await names()).toEqual(expect.arrayContaining(want));
    expect(await ensurePartitions(db(), 'events')).toEqual({ created: [], moved: [] });
    const [d] = await rows<{ n: number }>(
      db(),
      sql`select count(*)::int as n from pg_inherits i join pg_class c on c.oid = i.inhrelid
          where c.relname = 'events_default'`,
    );
    expect(d?.n).toBe(1);
  });

  it('are made ahead as time goes on, and from the rows of a month that sit in the default partition', async () => {
    // A month far ahead: its rows land in the default partition (no month of its own yet).
    const c = await w.makeCanary();
    const early = [sentEvent(w, c), sentEvent(w, c)];
    const other = sentEvent(w, c);
    expect(await post(w.us, [...early, other])).toEqual(['stored', 'stored', 'stored']);
    for (const e of early)
      await db().execute(
        sql`update events set received_at = '2099-02-10T00:00:00Z' where event_id = ${e.event_id}::uuid`,
      );
    await db().execute(
      sql`update events set received_at = '2099-06-10T00:00:00Z' where event_id = ${other.event_id}::uuid`,
    );
    for (const e of [...early, other]) expect(await partitionOf(e.event_id)).toEqual(['events_default']);
    const result = await ensurePartitions(db(), 'events', new Date('2099-01-20T00:00:00Z'));
    expect(result).toEqual({
      created: ['events_2099_01', 'events_2099_02', 'events_2099_03'],
      moved: [{ name: 'events_2099_02', rows: 2 }],
    });
    // Its rows are in their month now, the row of a month not made yet still in the default.
    for (const e of early) expect(await partitionOf(e.event_id)).toEqual(['events_2099_02']);
    expect(await partitionOf(other.event_id)).toEqual(['events_default']);
    // The month made late is a partition like the others: its key holds, its indexes exist.
    const [idx] = await rows<{ n: number }>(
      db(),
      sql`select count(*)::int as n from pg_indexes where tablename = 'events_2099_02'`,
    );
    const [ref] = await rows<{ n: number }>(
      db(),
      sql`select count(*)::int as n from pg_indexes where tablename = 'events_2099_01'`,
    );
    expect(idx?.n).toBe(ref?.n);
    await expect(
      db().execute(
        sql`insert into events_2099_02 select * from events_2099_02 where event_id = ${early[0]!.event_id}::uuid`,
      ),
    ).rejects.toThrow();
    await db().execute(
      sql`delete from events where event_id = any(${sql.param([...early, other].map((e) => e.event_id))}::uuid[])`,
    );
  });

  it('of past months are dropped once empty, never this month or a month that holds a row', async () => {
    await ensurePartitions(db(), 'events', new Date('2020-03-15T00:00:00Z'));
    expect(await names()).toEqual(
      expect.arrayContaining(['events_2020_03', 'events_2020_04', 'events_2020_05']),
    );
    const c = await w.makeCanary();
    const e = sentEvent(w, c);
    expect(await post(w.us, [e])).toEqual(['stored']);
    await db().execute(
      sql`update events set received_at = '2020-03-10T12:00:00Z' where event_id = ${e.event_id}::uuid`,
    );
    expect(await partitionOf(e.event_id)).toEqual(['events_2020_03']);

    const now = await dbNow();
    const current = partitionName(monthStart(now));
    const dropped = await dropEmptyEventPartitions(db());
    expect(dropped).toEqual(expect.arrayContaining(['events_2020_04', 'events_2020_05']));
    expect(dropped).not.toContain('events_2020_03');
    expect(dropped).not.toContain(current);
    expect(await names()).toContain('events_2020_03');
    expect(await names()).toContain(current);

    // The retention job's deletes empty it; its next run drops it (and keeps months ahead).
    await db().execute(sql`delete from events where event_id = ${e.event_id}::uuid`);
    const run = await pruneEvents(db(), now, { eventRetentionDays: 0, lookAlikeRetentionDays: 0 });
    expect(run.partitionsDropped).toEqual(['events_2020_03']);
    expect(await names()).not.toContain('events_2020_03');
    expect(await names()).toEqual(
      expect.arrayContaining(
        Array.from({ length: MONTHS_AHEAD + 1 }, (_, i) => partitionName(monthStart(now, i))),
      ),
    );
  });

  it('are left for a later retention run while ingest holds the table past the lock timeout', async (ctx) => {
    // Two connections at once: only the server has them (PGlite is one connection).
    if (getDb().driver !== 'pg') ctx.skip();
    const now = await dbNow();
    const last = partitionName(monthStart(now, MONTHS_AHEAD));
    await db().execute(sql.raw(`drop table ${last}`));
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => {
      locked = r;
    });
    const holder = db().transaction(async (tx) => {
      await tx.execute(sql`lock table events in access share mode`);
      locked();
      await released;
    });
    await isLocked;
    try {
      const run = await pruneEvents(db(), now, { eventRetentionDays: 0, lookAlikeRetentionDays: 0 });
      expect(run.partitionsCreated).toEqual([]);
      expect(await names()).not.toContain(last);
    } finally {
      release();
      await holder;
    }
    const run = await pruneEvents(db(), now, { eventRetentionDays: 0, lookAlikeRetentionDays: 0 });
    expect(run.partitionsCreated).toEqual([last]);
  });

  it('keep ingest idempotent per event across months: a resend of an event stored last month is a duplicate', async () => {
    const now = await dbNow();
    const lastMonth = monthStart(now, -1);
    await ensurePartitions(db(), 'events', lastMonth);
    const stamp = new Date(lastMonth.getTime() + 2 * DAY);

    // A canary's send, stored last month (its canary made before it, as every canary is).
    const c = await w.makeCanary();
    const sent = sentEvent(w, c);
    expect(await post(w.us, [sent])).toEqual(['stored']);
    await db().execute(
      sql`update canaries set created_at = ${new Date(stamp.getTime() - 3_600_000).toISOString()}::timestamptz
          where id = ${c.id}::uuid`,
    );
    // A look-alike receipt (no canary of ours), stored last month too.
    const lookAlike = receivedEvent(w, 'bob', {
      id: randomUUID(),
      nonce: newNonce(),
      text: 'x',
      deadlineAt: new Date(),
    });
    expect(await post(w.cn, [lookAlike])).toEqual(['stored']);
    for (const id of [sent.event_id, lookAlike.event_id]) {
      await db().execute(
        sql`update events set received_at = ${stamp.toISOString()}::timestamptz where event_id = ${id}::uuid`,
      );
      expect(await partitionOf(id)).toEqual([partitionName(lastMonth)]);
    }

    // Sent again this month, with a new event beside each: duplicates, stored once.
    const receipt = receivedEvent(w, 'bob', c);
    expect(await post(w.us, [sent])).toEqual(['duplicate']);
    expect(await post(w.cn, [lookAlike, receipt])).toEqual(['duplicate', 'stored']);
    expect(await partitionOf(sent.event_id)).toEqual([partitionName(lastMonth)]);
    expect(await partitionOf(lookAlike.event_id)).toEqual([partitionName(lastMonth)]);
    expect(await partitionOf(receipt.event_id)).toEqual([partitionName(monthStart(now))]);

    // The outcome is derived from both months' events: the send of last month, the receipt of this one.
    const [o] = await rows<{ status: string; sent: string | null; received: string | null }>(
      db(),
      sql`select status, sent_event_id::text as sent, received_event_id::text as received from outcomes
          where canary_id = ${c.id}::uuid and recipient_account_id = ${w.accountIds.bob}::uuid`,
    );
    expect(o).toEqual({ status: 'delivered', sent: sent.event_id, received: receipt.event_id });
  });

  it('prune the months a time-bounded read does not name', async () => {
    await ensurePartitions(db(), 'events', new Date('2020-03-15T00:00:00Z'));
    const plan = await rows<{ 'QUERY PLAN': string }>(
      db(),
      sql`explain select count(*) from events
          where probe_id = ${w.us.id}::uuid and type = 'received' and canary_id is null
            and received_at >= now() - interval '1 hour'`,
    );
    const text = plan.map((r) => r['QUERY PLAN']).join('\n');
    expect(text).not.toContain('events_2020_03');
    // and the same read without the bound does name it (the check above can fail)
    const all = await rows<{ 'QUERY PLAN': string }>(
      db(),
      sql`explain select count(*) from events where type = 'received' and canary_id is null`,
    );
    expect(all.map((r) => r['QUERY PLAN']).join('\n')).toContain('events_2020_03');
    // Two collectors dropping at once: each month goes once, neither run fails.
    const [a, b] = await Promise.all([dropEmptyEventPartitions(db()), dropEmptyEventPartitions(db())]);
    expect([...a, ...b].sort()).toEqual(['events_2020_03', 'events_2020_04', 'events_2020_05']);
  });
});

describeEachDb('monthly partitions of outcomes', (getDb) => {
  let app: FastifyInstance;
  let w: World;
  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
  });
  const db = (): Db => getDb().db;

  const names = async () => (await partitionsOf(db(), 'outcomes')).map((p) => p.name);
  const dbNow = () => databaseNow(db());
  /** The partitions a canary's outcomes are in, and their statuses. */
  const outcomesOf = async (canaryId: string) =>
    rows<{ p: string; status: string }>(
      db(),
      sql`select tableoid::regclass::text as p, status from outcomes where canary_id = ${canaryId}::uuid
          order by recipient_account_id`,
    );
  const post = (probe: World['us'], events: unknown[]) => postEvents(app, probe, events);
  const plan = async (query: ReturnType<typeof sql>) =>
    (await rows<{ 'QUERY PLAN': string }>(db(), sql`explain ${query}`))
      .map((r) => r['QUERY PLAN'])
      .join('\n');

  it('are made by the migration for this month and the next ones, beside the months of events', async () => {
    const now = await dbNow();
    const want = Array.from({ length: MONTHS_AHEAD + 1 }, (_, i) =>
      partitionName(monthStart(now, i), 'outcomes'),
    );
    expect(await names()).toEqual(expect.arrayContaining(want));
    expect(await ensurePartitions(db(), 'outcomes')).toEqual({ created: [], moved: [] });
    expect(await ensureAllPartitions(db())).toEqual({ created: [], moved: [], deferred: [] });
  });

  it("hold a canary's outcomes in the month of its deadline, written and rewritten there", async () => {
    const now = await dbNow();
    const next = monthStart(now, 1);
    const c = await w.makeCanary({
      sendAt: new Date(next.getTime() - 60_000),
      deadlineAt: new Date(next.getTime() + DAY),
    });
    expect(await post(w.us, [sentEvent(w, c)])).toEqual(['stored']);
    const month = partitionName(next, 'outcomes');
    expect(await outcomesOf(c.id)).toEqual([
      { p: month, status: 'pending' },
      { p: month, status: 'pending' },
    ]);
    expect(await post(w.cn, [receivedEvent(w, 'bob', c)])).toEqual(['stored']);
    expect((await outcomesOf(c.id)).map((o) => o.p)).toEqual([month, month]);
    expect((await outcomesOf(c.id)).map((o) => o.status).sort()).toEqual(['delivered', 'pending']);
  });

  it('are made from the rows of a month that sit in the default partition, which stay writable', async () => {
    // A canary whose deadline is in a month not made yet: its outcomes land in the default.
    const c = await w.makeCanary({ sendAt: new Date(), deadlineAt: new Date('2099-02-10T00:00:00Z') });
    expect(await post(w.us, [sentEvent(w, c)])).toEqual(['stored']);
    expect((await outcomesOf(c.id)).map((o) => o.p)).toEqual(['outcomes_default', 'outcomes_default']);
    const result = await ensurePartitions(db(), 'outcomes', new Date('2099-01-20T00:00:00Z'));
    expect(result).toEqual({
      created: ['outcomes_2099_01', 'outcomes_2099_02', 'outcomes_2099_03'],
      moved: [{ name: 'outcomes_2099_02', rows: 2 }],
    });
    expect((await outcomesOf(c.id)).map((o) => o.p)).toEqual(['outcomes_2099_02', 'outcomes_2099_02']);
    // A receipt after the move updates the outcome where it is now (no second row).
    expect(await post(w.cn, [receivedEvent(w, 'bob', c)])).toEqual(['stored']);
    const after = await outcomesOf(c.id);
    expect(after.map((o) => o.p)).toEqual(['outcomes_2099_02', 'outcomes_2099_02']);
    expect(after.map((o) => o.status).sort()).toEqual(['delivered', 'pending']);
    // The month made late has the indexes of the others, and its key holds.
    const [idx] = await rows<{ n: number }>(
      db(),
      sql`select count(*)::int as n from pg_indexes where tablename = 'outcomes_2099_02'`,
    );
    const [ref] = await rows<{ n: number }>(
      db(),
      sql`select count(*)::int as n from pg_indexes where tablename = 'outcomes_2099_01'`,
    );
    expect(idx?.n).toBe(ref?.n);
    await expect(
      db().execute(
        sql`insert into outcomes_2099_02 select * from outcomes_2099_02 where canary_id = ${c.id}::uuid`,
      ),
    ).rejects.toThrow();
  });

  it('are never dropped by a retention run, empty or not (outcomes are the research record)', async () => {
    await ensurePartitions(db(), 'outcomes', new Date('2020-03-15T00:00:00Z'));
    const run = await pruneEvents(db(), await dbNow(), { eventRetentionDays: 1, lookAlikeRetentionDays: 1 });
    expect(run.partitionsDropped.filter((n) => n.startsWith('outcomes'))).toEqual([]);
    expect(await names()).toEqual(expect.arrayContaining(['outcomes_2020_03', 'outcomes_2020_04']));
  });

  it("are pruned by a research window's start, and a canary's own outcomes are read from its month only", async () => {
    await ensurePartitions(db(), 'outcomes', new Date('2020-03-15T00:00:00Z'));
    const from = new Date((await dbNow()).getTime() - DAY);
    const windowed = await plan(
      sql`select count(*) from ${OUTCOME_FROM} where ${whereClause(outcomeConditions({ from }))}`,
    );
    expect(windowed).not.toContain('outcomes_2020_03');
    // the same read without a window does read that month (the check above can fail)
    expect(await plan(sql`select count(*) from ${OUTCOME_FROM} where true`)).toContain('outcomes_2020_03');

    // One canary's outcomes, joined on its deadline as every read does (and looked for in a
    // subquery, as sealing does): the other months are pruned when the query runs (the
    // canary's deadline is known only then).
    const c = await w.makeCanary();
    expect(await post(w.us, [sentEvent(w, c)])).toEqual(['stored']);
    const analysed = (
      await rows<{ 'QUERY PLAN': string }>(
        db(),
        sql`explain (analyze, costs off, timing off, summary off)
            select o.status, coalesce((select true from outcomes po where po.canary_id = c.id
                and ${sameDeadlineInSubquery('po', 'c')} and po.status = 'pending' limit 1), false)
            from canaries c join outcomes o on o.canary_id = c.id and ${sameDeadline('o', 'c')}
            where c.id = ${c.id}::uuid`,
      )
    ).map((r) => r['QUERY PLAN']);
    const old = analysed.filter((l) => l.includes('outcomes_2020_03'));
    expect(
      old.every((l) => l.includes('never executed')),
      analysed.join('\n'),
    ).toBe(true);
    const mine = partitionName(monthStart(c.deadlineAt), 'outcomes');
    expect(
      analysed.some((l) => l.includes(mine) && !l.includes('never executed')),
      analysed.join('\n'),
    ).toBe(true);
  });
});
