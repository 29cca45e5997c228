/**
 * Rule behaviour through real HTTP on port 0: drop, delay, notice, replace, all/any,
 * per-recipient scope in a group, sender scope, conversation scope, probability,
 * active windows.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Testbed } from './server.ts';
import { account, direct, group, T0, testbed } from './test-helpers.ts';

const REGIONS = ['CN', 'US', 'AU', 'TW'];
let tb: (Testbed & { clock: import('./clock.ts').ManualClock }) | undefined;
afterEach(async () => {
  await tb?.close();
  tb = undefined;
});

async function setup(rules: unknown[], extra: Record<string, unknown> = {}) {
  tb = await testbed({ regions: REGIONS, rules, ...extra });
  const us = await account(tb.url, 'us-sender', 'US');
  const au = await account(tb.url, 'au-sender', 'AU');
  const cn = await account(tb.url, 'cn-member', 'CN');
  const us2 = await account(tb.url, 'us-member', 'US');
  return { tb, us, au, cn, us2 };
}

describe('censorship rules over HTTP', () => {
  it('drops silently: the sender sees sent, the recipient never gets it', async () => {
    const { us, cn, tb } = await setup([{ id: 'd', match: { any: ['六四'] }, action: 'drop' }]);
    const c = await direct(us, cn);
    const sent = await us.send(c, '纪念六四');
    expect(sent.status).toBe(200);
    expect(sent.data).toMatchObject({
      status: 'sent',
      id: expect.any(String),
      at: new Date(T0).toISOString(),
    });
    await us.send(c, 'control message');
    tb.clock.advance(60_000);
    expect((await cn.received(c)).map((m) => m.text)).toEqual(['control message']);
    expect((await us.messages(c)).map((m) => m.text)).toEqual(['纪念六四', 'control message']);
  });

  it('delays by delay_ms: not listed before, listed after', async () => {
    const { us, cn, tb } = await setup([
      { id: 'slow', match: { any: ['维权'] }, action: 'delay', delay_ms: 20_000 },
    ]);
    const c = await direct(us, cn);
    await us.send(c, '维权 news');
    tb.clock.advance(19_999);
    expect(await cn.received(c)).toEqual([]);
    tb.clock.advance(1);
    const [m] = await cn.received(c);
    expect(m).toMatchObject({ text: '维权 news', at: new Date(T0).toISOString() });
    expect(Date.parse(m?.delivered_at ?? '') - T0).toBe(20_000);
  });

  it('answers a notice with 403 and the text, and nobody receives the message', async () => {
    const notice = 'This message contains inappropriate content';
    const { us, cn, us2, tb } = await setup([
      { id: 'overt', match: { any: ['法轮功'] }, action: 'notice', notice },
    ]);
    const g = await group(us, [cn, us2]);
    const r = await us.send(g, '法轮功 text');
    expect(r.status).toBe(403);
    expect(r.data).toEqual({ error: 'content_rejected', message: notice });
    tb.clock.advance(60_000);
    expect(await cn.received(g)).toEqual([]);
    expect(await us2.received(g)).toEqual([]);
    expect(await us.messages(g)).toEqual([]);
  });

  it("replaces matched terms in that recipient's copy only", async () => {
    const { us, cn, us2 } = await setup([
      {
        id: 'mask',
        match: { any: ['习近平'] },
        action: 'replace',
        replace_with: '***',
        scope: { recipient_region: ['CN'] },
      },
    ]);
    const g = await group(us, [cn, us2]);
    await us.send(g, '关于习近平的文章');
    expect((await cn.received(g))[0]?.text).toBe('关于***的文章');
    expect((await us2.received(g))[0]?.text).toBe('关于习近平的文章');
    expect((await us.messages(g))[0]?.text).toBe('关于习近平的文章');
  });

  it('fires an all-combination only when every term is present', async () => {
    const { us, cn } = await setup([{ id: 'combo', match: { all: ['709', '律师'] }, action: 'drop' }]);
    const c = await direct(us, cn);
    await us.send(c, '709 alone');
    await us.send(c, '律师 alone');
    await us.send(c, '709 律师 together');
    expect((await cn.received(c)).map((m) => m.text)).toEqual(['709 alone', '律师 alone']);
  });

  it('decides per recipient in a group: the CN member misses it, the US member gets it', async () => {
    const { us, cn, us2 } = await setup([
      {
        id: 'g',
        match: { any: ['六四'] },
        action: 'drop',
        scope: { conversation: 'group', recipient_region: ['CN'] },
      },
    ]);
    const g = await group(us, [cn, us2]);
    const r = await us.send(g, '六四 canary');
    expect(r.data.status).toBe('sent');
    expect(await cn.received(g)).toEqual([]);
    expect((await us2.received(g)).map((m) => m.text)).toEqual(['六四 canary']);
  });

  it('limits a rule to the listed sender regions', async () => {
    const { us, au, cn } = await setup([
      { id: 's', match: { any: ['六四'] }, action: 'drop', scope: { sender_region: ['US'] } },
    ]);
    const fromUs = await direct(us, cn);
    const fromAu = await direct(au, cn);
    await us.send(fromUs, '六四 from US');
    await au.send(fromAu, '六四 from AU');
    expect(await cn.received(fromUs)).toEqual([]);
    expect((await cn.received(fromAu)).map((m) => m.text)).toEqual(['六四 from AU']);
  });

  it('limits a rule to direct or group conversations', async () => {
    const { us, cn } = await setup([
      { id: 'd', match: { any: ['六四'] }, action: 'drop', scope: { conversation: 'direct' } },
    ]);
    const d = await direct(us, cn);
    const g = await group(us, [cn]);
    await us.send(d, '六四 direct');
    await us.send(g, '六四 group');
    expect(await cn.received(d)).toEqual([]);
    expect((await cn.received(g)).map((m) => m.text)).toEqual(['六四 group']);
  });

  it('drops with the given probability, reproducibly with a seed', async () => {
    const run = async () => {
      const { us, cn } = await setup([{ id: 'p', match: { any: ['x'] }, action: 'drop', probability: 0.3 }]);
      const c = await direct(us, cn);
      for (let i = 0; i < 400; i++) await us.send(c, `x ${i}`);
      const got = (await cn.received(c)).map((m) => m.text);
      await tb?.close();
      tb = undefined;
      return got;
    };
    const first = await run();
    const dropped = 1 - first.length / 400;
    expect(dropped).toBeGreaterThan(0.3 - 0.07);
    expect(dropped).toBeLessThan(0.3 + 0.07);
    expect(await run()).toEqual(first);
  });

  it('applies a rule only inside its active window', async () => {
    const from = new Date(T0 + 3_600_000).toISOString();
    const to = new Date(T0 + 7_200_000).toISOString();
    const { us, cn, tb } = await setup([
      { id: 'w', match: { any: ['x'] }, action: 'drop', active: { from, to } },
    ]);
    const c = await direct(us, cn);
    await us.send(c, 'x before');
    tb.clock.set(T0 + 3_600_000);
    await us.send(c, 'x during');
    tb.clock.set(T0 + 7_200_000);
    await us.send(c, 'x after');
    expect((await cn.received(c)).map((m) => m.text)).toEqual(['x before', 'x after']);
  });

  it('lets the first matching rule per recipient win, and a notice win over everything', async () => {
    const { us, cn, us2 } = await setup([
      {
        id: 'mask-cn',
        match: { any: ['a'] },
        action: 'replace',
        replace_with: '#',
        scope: { recipient_region: ['CN'] },
      },
      { id: 'drop-all', match: { any: ['a'] }, action: 'drop' },
      {
        id: 'stop',
        match: { any: ['stop'] },
        action: 'notice',
        notice: 'no',
        scope: { recipient_region: ['CN'] },
      },
    ]);
    const g = await group(us, [cn, us2]);
    await us.send(g, 'a!');
    expect((await cn.received(g)).map((m) => m.text)).toEqual(['#!']);
    expect(await us2.received(g)).toEqual([]);
    // A notice scoped to CN recipients fires when the conversation has a CN member...
    expect((await us.send(g, 'a stop')).status).toBe(403);
    // ...and not in a conversation without one.
    const usOnly = await direct(us, us2);
    expect((await us.send(usOnly, 'stop')).status).toBe(200);
  });
});
