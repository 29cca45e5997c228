import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { ConversationDisagreement } from '../protocol/index.ts';
import { type Db, rows } from './db/open.ts';
import { describeEachDb } from './test-support/db.ts';
import { account, checkin, enrollProbe, signedPost, TEST_ADMIN_TOKEN } from './test-support/probe.ts';
import { onAppWorld, sentEvent, type World } from './test-support/world.ts';

const auth = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

async function viewOf(db: Db, probeId: string, ref: string) {
  const [v] = await rows<{ kind: string; members: string[] }>(
    db,
    sql`select v.kind, v.members from conversation_views v join conversations cv on cv.id = v.conversation_id
        where v.probe_id = ${probeId}::uuid and cv.ref = ${ref}`,
  );
  return v;
}

async function conversation(db: Db, ref: string) {
  const [c] = await rows<{ kind: string; members: string[] }>(
    db,
    sql`select cv.kind, coalesce(array(select m.handle from conversation_members m
          where m.conversation_id = cv.id order by m.handle), '{}') as members
        from conversations cv where cv.ref = ${ref}`,
  );
  return c;
}

/** The accounts a canary alice sends in the world's group is expected at (its outcome rows). */
async function expectedRecipients(app: FastifyInstance, db: Db, w: World): Promise<string[]> {
  const c = await w.makeCanary();
  const res = await signedPost(app, w.us, '/probe/v1/events', { protocol: 1, events: [sentEvent(w, c)] });
  expect(res.statusCode, res.body).toBe(200);
  const found = await rows<{ handle: string }>(
    db,
    sql`select a.handle from outcomes o join accounts a on a.id = o.recipient_account_id
        where o.canary_id = ${c.id}::uuid order by a.handle`,
  );
  return found.map((r) => r.handle);
}

describeEachDb('conversation views', (getDb) => {
  let app: FastifyInstance;
  let w: World;
  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
  });

  it('a hostile probe reporting another kind and dropping the CN account changes neither the CN view nor the recipients, and admins see it', async () => {
    const { db } = getDb();
    const before = await expectedRecipients(app, db, w);
    expect(before).toEqual([w.handles.bob, w.handles.carol].sort());
    const cnView = await viewOf(db, w.cn.id, w.group);

    const hostile = await enrollProbe(app, { country: 'CN', asn: 64666 });
    const mallory = `mallory-${randomBytes(3).toString('hex')}`;
    await checkin(
      app,
      hostile,
      [account('testbed', mallory, 'CN')],
      [{ platform: 'testbed', ref: w.group, kind: 'direct', members: [w.handles.alice, mallory] }],
    );

    expect(await viewOf(db, w.cn.id, w.group)).toEqual(cnView);
    expect(await viewOf(db, hostile.id, w.group)).toEqual({
      kind: 'direct',
      members: [w.handles.alice, mallory],
    });
    const conv = await conversation(db, w.group);
    expect(conv?.kind).toBe('group');
    // bob and carol are still expected; the hostile probe can only speak for its own account
    expect(conv?.members).toEqual([w.handles.alice, w.handles.bob, w.handles.carol, mallory].sort());
    expect(await expectedRecipients(app, db, w)).toEqual([w.handles.bob, w.handles.carol, mallory].sort());

    const res = await app.inject({
      method: 'GET',
      url: '/admin/v1/conversations/disagreements',
      headers: auth,
    });
    expect(res.statusCode, res.body).toBe(200);
    const found = (res.json() as { conversations: ConversationDisagreement[] }).conversations.find(
      (c) => c.ref === w.group,
    );
    expect(found).toMatchObject({ platform: 'testbed', kind: 'group', kinds_differ: true });
    expect(found?.views.map((v) => [v.probe_id, v.kind]).sort()).toEqual(
      [
        [w.us.id, 'group'],
        [w.cn.id, 'group'],
        [hostile.id, 'direct'],
      ].sort(),
    );
    expect(found?.members_differ).toEqual(
      expect.arrayContaining([
        { probe_id: hostile.id, handle: w.handles.bob, owner_probe_id: w.cn.id, issue: 'omits' },
        { probe_id: hostile.id, handle: w.handles.carol, owner_probe_id: w.cn.id, issue: 'omits' },
      ]),
    );
    // the honest probes are only told apart from the hostile one where they do not list mallory
    expect(found?.members_differ.every((d) => d.probe_id === hostile.id || d.handle === mallory)).toBe(true);
  });

  it('a probe cannot put another probe’s account into a conversation that probe does not report', async () => {
    const { db } = getDb();
    const hostile = await enrollProbe(app, { country: 'US', asn: 64667 });
    const eve = `eve-${randomBytes(3).toString('hex')}`;
    const ref = `fake-${randomUUID()}`;
    await checkin(
      app,
      hostile,
      [account('testbed', eve, 'US')],
      [{ platform: 'testbed', ref, kind: 'direct', members: [eve, w.handles.bob] }],
    );
    expect((await conversation(db, ref))?.members).toEqual([eve]);
    // and its accounts stay its own: bob is not taken over
    const res = await checkin(app, w.cn, [account('testbed', w.handles.bob, 'CN')], []);
    expect(res.statusCode).toBe(200);
  });

  it('the kind changes only when every view agrees on the new one', async () => {
    const { db } = getDb();
    const tag = randomBytes(3).toString('hex');
    const ref = `dm-${tag}`;
    const members = [w.handles.alice, w.handles.bob];
    await checkin(
      app,
      w.us,
      [account('testbed', w.handles.alice, 'US')],
      [{ platform: 'testbed', ref, kind: 'group', members }],
    );
    await checkin(
      app,
      w.cn,
      [account('testbed', w.handles.bob, 'CN')],
      [{ platform: 'testbed', ref, kind: 'direct', members }],
    );
    expect((await conversation(db, ref))?.kind).toBe('group'); // disagreement: the first kind stands
    await checkin(
      app,
      w.us,
      [account('testbed', w.handles.alice, 'US')],
      [{ platform: 'testbed', ref, kind: 'direct', members }],
    );
    expect(await conversation(db, ref)).toEqual({ kind: 'direct', members: [...members].sort() });
    const res = await app.inject({
      method: 'GET',
      url: '/admin/v1/conversations/disagreements',
      headers: auth,
    });
    expect(
      (res.json() as { conversations: ConversationDisagreement[] }).conversations.some((c) => c.ref === ref),
    ).toBe(false);
  });
});

describe('conversation disagreements (pure)', () => {
  it('reports nothing when the views agree', async () => {
    const { conversationDisagreements } = await import('./conversation-views.ts');
    const view = (probeId: string) => ({
      conversationId: 'c',
      platform: 't',
      ref: 'r',
      kind: 'group' as const,
      probeId,
      viewKind: 'group' as const,
      title: null,
      members: ['a', 'b'],
      updatedAt: new Date(0),
      owners: [
        { handle: 'a', probeId: 'p1' },
        { handle: 'b', probeId: 'p2' },
      ],
    });
    expect(conversationDisagreements([view('p1'), view('p2')])).toEqual([]);
  });
});
