import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { CheckinRefusal } from '../protocol/index.ts';
import { INT4_MAX, screenCheckin, textProblem } from './checkin-values.ts';
import { rows } from './db/open.ts';
import { describeEachDb } from './test-support/db.ts';
import { account, checkinBody, enrollProbe, signedPost } from './test-support/probe.ts';
import { onAppWorld } from './test-support/world.ts';

describe('check-in values (pure)', () => {
  it('names NUL characters and lone surrogates, and passes well-formed text with astral characters', () => {
    expect(textProblem('a\u0000b')).toBe('contains a NUL character');
    expect(textProblem('a\ud800b')).toMatch(/lone surrogate/);
    expect(textProblem('a\udc00')).toMatch(/lone surrogate/);
    expect(textProblem('六四 😀 \ud83d\ude00')).toBeUndefined();
  });

  it('refuses an int4 overflow and a clock from another decade, keeping the rest', () => {
    const now = new Date('2026-06-01T00:00:00Z');
    const out = screenCheckin(
      checkinBody([], [], {
        outbox_backlog: INT4_MAX + 1,
        dead_letters: INT4_MAX,
        clock: { offset_ms: 3, rtt_ms: 4, measured_at: '2016-06-01T00:00:00.000Z' },
      }),
      now,
    );
    expect(out.outboxBacklog).toBeUndefined();
    expect(out.deadLetters).toBe(INT4_MAX);
    expect(out.clock).toBeUndefined();
    expect(out.refused.map((r) => r.path)).toEqual(['/outbox_backlog', '/clock']);
  });
});

describeEachDb('check-in refuses what the database cannot hold, item by item', (getDb) => {
  let app: FastifyInstance;
  onAppWorld(getDb, (a) => {
    app = a;
  });

  it('answers 200, refuses the NUL title, the lone surrogate and outbox_backlog 2^31 by field, and stores the rest', async () => {
    const { db } = getDb();
    const probe = await enrollProbe(app, { country: 'DE', asn: 64510 });
    const tag = randomBytes(4).toString('hex');
    const good = `good-${tag}`;
    const okRes = await signedPost(
      app,
      probe,
      '/probe/v1/checkin',
      checkinBody([account('testbed', good, 'DE')], [], { outbox_backlog: 7 }),
    );
    expect(okRes.statusCode, okRes.body).toBe(200);
    expect(okRes.json().refused).toBeUndefined();

    const body = checkinBody(
      [
        account('testbed', good, 'DE'),
        account('testbed', `bad\ud800-${tag}`, 'DE'),
        account('testbed', `nul\u0000-${tag}`, 'DE'),
        account('testbed', good, 'DE', 'quarantined'),
      ],
      [
        { platform: 'testbed', ref: `kept-${tag}`, kind: 'group', title: 'Fine 六四 😀', members: [good] },
        { platform: 'testbed', ref: `nul-title-${tag}`, kind: 'group', title: 'a\u0000b', members: [good] },
        { platform: 'testbed', ref: `surrogate-${tag}`, kind: 'direct', members: [good, 'x\udfff'] },
      ],
      {
        software_version: 'v\u0000',
        outbox_backlog: 2 ** 31,
        dead_letters: 3,
        clock: { offset_ms: 1.5, rtt_ms: 20, measured_at: '1999-01-01T00:00:00.000Z' },
      },
    );
    const res = await signedPost(app, probe, '/probe/v1/checkin', body);
    expect(res.statusCode, res.body).toBe(200);
    const refused = res.json().refused as CheckinRefusal[];
    expect(refused).toEqual([
      { path: '/accounts/1', reason: '/accounts/1/handle: contains a lone surrogate (not valid Unicode)' },
      { path: '/accounts/2', reason: '/accounts/2/handle: contains a NUL character' },
      { path: '/accounts/3', reason: '/accounts/3: repeats /accounts/0' },
      { path: '/conversations/1', reason: '/conversations/1/title: contains a NUL character' },
      {
        path: '/conversations/2',
        reason: '/conversations/2/members/1: contains a lone surrogate (not valid Unicode)',
      },
      { path: '/software_version', reason: '/software_version: contains a NUL character' },
      { path: '/outbox_backlog', reason: `/outbox_backlog: ${2 ** 31} is more than ${2 ** 31 - 1}` },
      {
        path: '/clock',
        reason: '/clock/measured_at: outside 30 days before to 1 day after the collector clock',
      },
    ]);

    const convs = await rows<{ ref: string; title: string | null }>(
      db,
      sql`select ref, title from conversations where ref like ${`%-${tag}`} order by ref`,
    );
    expect(convs).toEqual([{ ref: `kept-${tag}`, title: 'Fine 六四 😀' }]);
    const accs = await rows<{ handle: string; state: string }>(
      db,
      sql`select handle, state from accounts where probe_id = ${probe.id}::uuid order by handle`,
    );
    expect(accs).toEqual([{ handle: good, state: 'active' }]);
    const [p] = await rows<{ outbox: number; dead: number; version: string; clock: number | null }>(
      db,
      sql`select outbox_backlog as outbox, dead_letters as dead, software_version as version,
            clock_offset_ms as clock from probes where id = ${probe.id}::uuid`,
    );
    // refused values keep what was stored; the valid neighbour (dead_letters) is stored
    expect(p).toEqual({ outbox: 7, dead: 3, version: 'test', clock: null });
  });
});
