/**
 * The testbed adapter against the real testbed server (testbed/server.ts), over HTTP
 * and SSE only, as a probe would meet it. (Tests may import testbed/; probe code may not.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestbed, type Testbed } from '../../../testbed/server.ts';
import type { AccountConfig, Adapter, ObservedMessage } from '../types.ts';
import factory from './index.ts';

const logger = pino({ level: 'silent' });
const policy = {
  regions: ['CN', 'US'],
  rules: [
    {
      id: 'overt',
      match: { any: ['法轮功'] },
      action: 'notice',
      notice: 'This message contains inappropriate content',
    },
    { id: 'mask', match: { any: ['习近平'] }, action: 'replace', replace_with: '***' },
    { id: 'cn-drop', match: { any: ['六四'] }, action: 'drop', scope: { recipient_region: ['CN'] } },
  ],
};

let tb: Testbed;
let dir: string;
const open: Adapter[] = [];

beforeEach(async () => {
  tb = await startTestbed({ policy, seed: 1, rateLimit: { max: 5, windowMs: 60_000 } });
  dir = await mkdtemp(join(tmpdir(), 'sd-tb-adapter-'));
});
afterEach(async () => {
  for (const a of open.splice(0)) await a.close();
  await tb.close();
  await rm(dir, { recursive: true, force: true });
});

function account(handle: string, region: string, over: Partial<AccountConfig> = {}): AccountConfig {
  return {
    platform: 'testbed',
    handle,
    region,
    credentials: { password: `pw-${handle}-long` },
    settings: { url: tb.url, sign_up: true, timeout_ms: 3000 },
    ...over,
  };
}

async function adapterFor(
  handle: string,
  region: string,
  over: Partial<AccountConfig> = {},
): Promise<Adapter> {
  const a = factory.create(account(handle, region, over), { logger, stateDir: join(dir, handle) });
  open.push(a);
  await a.connect();
  return a;
}

/** A group made through the API directly (the adapter only uses conversations). */
async function makeGroup(owner: string, members: string[]): Promise<string> {
  const login = await fetch(`${tb.url}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ handle: owner, password: `pw-${owner}-long` }),
  });
  const { token } = (await login.json()) as { token: string };
  const res = await fetch(`${tb.url}/api/conversations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ kind: 'group', title: 'g', members }),
  });
  expect(res.status).toBeLessThan(300);
  return String(((await res.json()) as { id: unknown }).id);
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('testbed adapter', () => {
  it('signs up, lists conversations, sends and observes text as delivered', async () => {
    const us = await adapterFor('us-ann', 'US');
    const cn = await adapterFor('cn-li', 'CN');
    const us2 = await adapterFor('us-bo', 'US');
    const g = await makeGroup('us-ann', ['cn-li', 'us-bo']);
    const convs = await cn.listConversations();
    expect(convs).toEqual([expect.objectContaining({ ref: g, kind: 'group' })]);
    expect(convs[0]!.members.sort()).toEqual(['cn-li', 'us-ann', 'us-bo']);

    const cnSaw: ObservedMessage[] = [];
    const usSaw: ObservedMessage[] = [];
    const annSaw: ObservedMessage[] = [];
    await cn.observe(
      (m) => void cnSaw.push(m),
      () => undefined,
    );
    await us2.observe(
      (m) => void usSaw.push(m),
      () => undefined,
    );
    await us.observe(
      (m) => void annSaw.push(m),
      () => undefined,
    );
    await new Promise((r) => setTimeout(r, 100)); // streams connected

    const sent = await us.send(g, 'hi 习近平 sd000000000001');
    expect(sent).toMatchObject({ status: 'sent', platformMessageId: expect.any(String) });
    const dropped = await us.send(g, '六四 sd000000000002');
    expect(dropped.status).toBe('sent'); // a drop is silent
    await until(() => cnSaw.length >= 1 && usSaw.length >= 2);
    await new Promise((r) => setTimeout(r, 150));
    expect(cnSaw.map((m) => m.text)).toEqual(['hi *** sd000000000001']);
    expect(usSaw.map((m) => m.text)).toEqual(['hi *** sd000000000001', '六四 sd000000000002']);
    expect(cnSaw[0]).toMatchObject({ conversation: g, from: 'us-ann' });
    expect(annSaw).toEqual([]); // own messages are not receipts
  });

  it('returns rejected with the notice text for a notice rule', async () => {
    const us = await adapterFor('us-ann', 'US');
    await adapterFor('cn-li', 'CN');
    const g = await makeGroup('us-ann', ['cn-li']);
    const res = await us.send(g, '法轮功 sd000000000003');
    expect(res).toMatchObject({
      status: 'rejected',
      failure: 'notice_shown',
      notice: 'This message contains inappropriate content',
    });
  });

  it('throws login_required for bad credentials and conversation_not_found for a stranger', async () => {
    await adapterFor('us-ann', 'US');
    const wrong = factory.create(
      account('us-ann', 'US', { credentials: { password: 'not-the-password' }, settings: { url: tb.url } }),
      { logger, stateDir: join(dir, 'x') },
    );
    await expect(wrong.connect()).rejects.toMatchObject({ name: 'AdapterError', code: 'login_required' });
    const us = await adapterFor('us-bo', 'US');
    await expect(us.send('no-such-conversation', 'x')).rejects.toMatchObject({
      code: 'conversation_not_found',
    });
  });

  it('maps 429 to rate_limited with the Retry-After wait', async () => {
    const us = await adapterFor('us-ann', 'US');
    await adapterFor('cn-li', 'CN');
    const g = await makeGroup('us-ann', ['cn-li']);
    let err: unknown;
    for (let i = 0; i < 10 && !err; i++) {
      err = await us.send(g, `msg ${i}`).then(
        () => undefined,
        (e: unknown) => e,
      );
    }
    expect(err).toMatchObject({ code: 'rate_limited' });
    expect((err as { retryAfterMs?: number }).retryAfterMs).toBeGreaterThan(0);
  });

  it('maps a platform that went away to connection_lost', async () => {
    const us = await adapterFor('us-ann', 'US');
    await adapterFor('cn-li', 'CN');
    const g = await makeGroup('us-ann', ['cn-li']);
    await tb.close();
    await expect(us.send(g, 'x')).rejects.toMatchObject({ code: 'connection_lost' });
  });

  it('resumes the stream after a restart from the saved Last-Event-ID without missing a message', async () => {
    const us = await adapterFor('us-ann', 'US');
    const first = await adapterFor('cn-li', 'CN');
    const g = await makeGroup('us-ann', ['cn-li']);
    const saw: string[] = [];
    await first.observe(
      (m) => void saw.push(m.text),
      () => undefined,
    );
    await new Promise((r) => setTimeout(r, 100));
    await us.send(g, 'one');
    await until(() => saw.length === 1);
    await first.close(); // saves the cursor
    open.splice(open.indexOf(first), 1);
    await us.send(g, 'two (while the probe was down)');
    const again = await adapterFor('cn-li', 'CN');
    const later: string[] = [];
    await again.observe(
      async (m) => void later.push(m.text),
      () => undefined,
    );
    await us.send(g, 'three');
    await until(() => later.length >= 2);
    await new Promise((r) => setTimeout(r, 100));
    expect(later).toEqual(['two (while the probe was down)', 'three']);
  });
});
