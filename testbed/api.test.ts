/** The HTTP contract of testbed/API.md: accounts, conversations, listing, errors, rate limit, web client. */
import { afterEach, describe, expect, it } from 'vitest';
import type { ManualClock } from './clock.ts';
import type { Testbed } from './server.ts';
import { account, Client, direct, group, testbed } from './test-helpers.ts';

let tb: (Testbed & { clock: ManualClock }) | undefined;
afterEach(async () => {
  await tb?.close();
  tb = undefined;
});

describe('accounts', () => {
  it('signs up, logs in, and answers /api/me for the token only', async () => {
    tb = await testbed({ regions: ['CN', 'US'] });
    const c = new Client(tb.url, 'alice');
    expect(
      await c.call('POST', '/api/accounts', { handle: 'alice', password: 'pw', region: 'US' }),
    ).toMatchObject({
      status: 201,
      data: { handle: 'alice', region: 'US' },
    });
    expect(
      (await c.call('POST', '/api/accounts', { handle: 'alice', password: 'x', region: 'CN' })).data.error,
    ).toBe('handle_taken');
    expect(
      (await c.call('POST', '/api/accounts', { handle: 'bob', password: 'x', region: 'RU' })).data.error,
    ).toBe('bad_region');
    expect((await c.call('POST', '/api/accounts', { handle: 'bob' })).status).toBe(400);
    expect(await c.call('POST', '/api/login', { handle: 'alice', password: 'wrong' })).toMatchObject({
      status: 401,
      data: { error: 'bad_credentials' },
    });
    expect(await c.call('GET', '/api/me')).toMatchObject({ status: 401, data: { error: 'login_required' } });
    const login = await c.call('POST', '/api/login', { handle: 'alice', password: 'pw' });
    expect(login.data).toMatchObject({ token: expect.any(String), handle: 'alice', region: 'US' });
    c.token = login.data.token;
    expect((await c.call('GET', '/api/me')).data).toEqual({ handle: 'alice', region: 'US' });
    expect((await c.call('POST', '/api/logout')).status).toBe(204);
    expect((await c.call('GET', '/api/me')).status).toBe(401);
  });
});

describe('conversations and messages', () => {
  it('gives one direct conversation per pair, from either side, and lists only own conversations', async () => {
    tb = await testbed({ regions: ['CN', 'US'] });
    const a = await account(tb.url, 'a', 'US');
    const b = await account(tb.url, 'b', 'CN');
    const outsider = await account(tb.url, 'o', 'CN');
    const ab = await direct(a, b);
    expect(await direct(b, a)).toBe(ab);
    const g = await group(a, [b], 'team');
    expect((await b.call('GET', '/api/conversations')).data).toEqual([
      { id: ab, kind: 'direct', members: ['a', 'b'] },
      { id: g, kind: 'group', members: ['a', 'b'], title: 'team' },
    ]);
    expect((await outsider.call('GET', '/api/conversations')).data).toEqual([]);
    expect((await outsider.send(g, 'hi')).data.error).toBe('conversation_not_found');
    expect((await outsider.call('GET', `/api/conversations/${g}/messages`)).status).toBe(404);
    expect((await a.call('POST', '/api/conversations', { kind: 'direct', with: 'nobody' })).data.error).toBe(
      'account_not_found',
    );
  });

  it('pages the message list with after and limit, oldest first', async () => {
    tb = await testbed({ regions: ['US'] });
    const a = await account(tb.url, 'a', 'US');
    const b = await account(tb.url, 'b', 'US');
    const c = await direct(a, b);
    for (const t of ['1', '2', '3', '4']) await a.send(c, t);
    const page1 = (await b.call('GET', `/api/conversations/${c}/messages?limit=2`)).data;
    expect(page1.map((m: { text: string }) => m.text)).toEqual(['1', '2']);
    const page2 = (await b.call('GET', `/api/conversations/${c}/messages?after=${page1[1].id}`)).data;
    expect(page2.map((m: { text: string }) => m.text)).toEqual(['3', '4']);
    expect(page2[0]).toEqual({
      id: expect.any(String),
      conversation: c,
      from: 'a',
      text: '3',
      at: expect.any(String),
      delivered_at: expect.any(String),
    });
    expect((await b.call('GET', `/api/conversations/${c}/messages?after=nope`)).data.error).toBe(
      'message_not_found',
    );
    expect((await b.call('GET', `/api/conversations/${c}/messages?limit=0`)).status).toBe(400);
  });

  it('refuses empty text with a 400 naming the field', async () => {
    tb = await testbed({ regions: ['US'] });
    const a = await account(tb.url, 'a', 'US');
    const b = await account(tb.url, 'b', 'US');
    const r = await a.send(await direct(a, b), '');
    expect(r.status).toBe(400);
    expect(r.data).toMatchObject({ error: 'bad_request', message: expect.stringContaining('text') });
  });

  it('rate-limits sends per account with 429 and Retry-After', async () => {
    tb = await testbed({ regions: ['US'] }, { rateLimit: { max: 3, windowMs: 60_000 } });
    const a = await account(tb.url, 'a', 'US');
    const b = await account(tb.url, 'b', 'US');
    const c = await direct(a, b); // creating it takes one token
    expect((await a.send(c, '1')).status).toBe(200);
    expect((await a.send(c, '2')).status).toBe(200);
    const limited = await a.send(c, '3');
    expect(limited.status).toBe(429);
    expect(limited.data.error).toBe('rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBe(20);
    expect((await b.send(c, 'b is not limited')).status).toBe(200);
    tb.clock.advance(20_000);
    expect((await a.send(c, '3')).status).toBe(200);
  });
});

describe('web client', () => {
  it('serves the page with the hooks browser recipes rely on', async () => {
    tb = await testbed({ regions: ['US'] });
    const res = await fetch(`${tb.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const html = await res.text();
    for (const hook of [
      '<form id="login"',
      'name="handle"',
      'name="password"',
      '<button type="submit">Log in',
      'id="login-error"',
      'id="me"',
      'id="logout"',
      'id="conversations"',
      'id="messages"',
      '<form id="composer"',
      '<textarea name="text"',
      'id="notice"',
      'src="/app.js"',
    ]) {
      expect(html).toContain(hook);
    }
    const js = await (await fetch(`${tb.url}/app.js`)).text();
    for (const hook of [
      "'testbed.token'",
      'dataset.conversationId',
      'aria-current',
      'dataset.messageId',
      "'rejected'",
    ]) {
      expect(js).toContain(hook);
    }
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML/);
  });
});
