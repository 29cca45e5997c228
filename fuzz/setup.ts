/**
 * The things generated requests refer to, set up through the real APIs: on the collector
 * a small world (collector/test-support/world.ts), 48 pending canaries, a stranger probe and
 * a term list; on the testbed two accounts with a direct chat and a message in it.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Db } from '../collector/db/open.ts';
import { account, checkin, enrollProbe, TEST_ADMIN_TOKEN } from '../collector/test-support/probe.ts';
import { buildWorld } from '../collector/test-support/world.ts';
import type { CollectorContext, TestbedContext } from './requests.ts';

/** `app` must run with the test admin token (collector/test-support/probe.ts). */
export async function collectorContext(app: FastifyInstance, db: Db): Promise<CollectorContext> {
  const world = await buildWorld(app, db);
  const inAnHour = () => new Date(Date.now() + 3_600_000);
  const canaries = [];
  for (let i = 0; i < 48; i++) canaries.push(await world.makeCanary({ deadlineAt: inAnHour() }));
  const stranger = await enrollProbe(app, { country: 'DE' });
  const strangerHandle = `stranger-${randomBytes(4).toString('hex')}`;
  await checkin(
    app,
    stranger,
    [account('testbed', strangerHandle, 'DE')],
    [
      {
        platform: 'testbed',
        ref: `stranger-room-${strangerHandle}`,
        kind: 'group',
        members: [strangerHandle, 'someone-else'],
      },
    ],
  );
  const list = await app.inject({
    method: 'POST',
    url: `/admin/v1/term-lists?name=fuzz-${randomBytes(4).toString('hex')}`,
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'text/plain' },
    payload: '天气\n',
  });
  if (list.statusCode !== 201) throw new Error(`term list: ${list.statusCode} ${list.body}`);
  return {
    world,
    canaries,
    stranger,
    strangerHandle,
    adminToken: TEST_ADMIN_TOKEN,
    termListId: (list.json() as { term_list: { id: string } }).term_list.id,
  };
}

async function call(url: string, method: string, path: string, body?: unknown, token?: string) {
  const res = await fetch(url + path, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`testbed ${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as Record<string, string>;
}

/** A testbed whose policy lists the region US. */
export async function testbedContext(url: string): Promise<TestbedContext> {
  const tag = randomBytes(4).toString('hex');
  const [handle, otherHandle] = [`fuzz-a-${tag}`, `fuzz-b-${tag}`];
  for (const h of [handle, otherHandle])
    await call(url, 'POST', '/api/accounts', { handle: h, password: 'pw', region: 'US' });
  const { token } = await call(url, 'POST', '/api/login', { handle, password: 'pw' });
  const conv = await call(url, 'POST', '/api/conversations', { kind: 'direct', with: otherHandle }, token);
  const msg = await call(url, 'POST', `/api/conversations/${conv.id}/messages`, { text: 'hello' }, token);
  return { token: token!, handle, otherHandle, conversationId: conv.id!, messageId: msg.id! };
}
