/**
 * Delivery over HTTP and SSE: outages, background loss and latency, and resuming the
 * event stream with Last-Event-ID.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ManualClock } from './clock.ts';
import type { Testbed } from './server.ts';
import { account, direct, group, SseReader, T0, testbed } from './test-helpers.ts';

let tb: (Testbed & { clock: ManualClock }) | undefined;
const streams: SseReader[] = [];
afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  await tb?.close();
  tb = undefined;
});

const iso = (ms: number) => new Date(ms).toISOString();

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

describe('outages', () => {
  it('loses messages sent during an outage or falling due in one, and delivers the rest', async () => {
    tb = await testbed({
      regions: ['CN', 'US'],
      outages: [{ from: iso(T0 + 3_600_000), to: iso(T0 + 7_200_000) }],
      rules: [{ id: 'slow', match: { any: ['slow'] }, action: 'delay', delay_ms: 120_000 }],
    });
    const us = await account(tb.url, 'us', 'US');
    const cn = await account(tb.url, 'cn', 'CN');
    const c = await direct(us, cn);
    await us.send(c, 'before');
    tb.clock.set(T0 + 3_600_000 - 60_000);
    const intoOutage = await us.send(c, 'slow: falls due inside the outage');
    expect(intoOutage.data.status).toBe('sent');
    tb.clock.set(T0 + 3_600_000 + 60_000);
    const during = await us.send(c, 'during');
    expect(during.status).toBe(200);
    expect(during.data.status).toBe('sent');
    tb.clock.set(T0 + 7_200_000 - 60_000);
    await us.send(c, 'slow: sent during the outage, due after it');
    tb.clock.set(T0 + 7_200_000);
    await us.send(c, 'after');
    tb.clock.advance(600_000);
    expect((await cn.received(c)).map((m) => m.text)).toEqual(['before', 'after']);
  });
});

describe('background loss and latency', () => {
  it('loses about the configured share of messages, per recipient (seeded)', async () => {
    tb = await testbed({ regions: ['CN', 'US'], background: { loss: 0.2 } }, { rateLimit: false });
    const us = await account(tb.url, 'us', 'US');
    const a = await account(tb.url, 'cn-a', 'CN');
    const b = await account(tb.url, 'cn-b', 'CN');
    const g = await group(us, [a, b]);
    const n = 800;
    for (let i = 0; i < n; i++) await us.send(g, `m${i}`);
    const gotA = new Set((await a.received(g)).map((m) => m.text));
    const gotB = new Set((await b.received(g)).map((m) => m.text));
    for (const got of [gotA, gotB]) {
      const loss = 1 - got.size / n;
      expect(loss).toBeGreaterThan(0.2 - 0.05);
      expect(loss).toBeLessThan(0.2 + 0.05);
    }
    // Decided per recipient: the two members do not lose the same messages.
    const lostByBoth = [...Array(n).keys()].filter((i) => !gotA.has(`m${i}`) && !gotB.has(`m${i}`)).length;
    expect(lostByBoth / n).toBeLessThan(0.1);
  });

  it('draws latency from a log-normal with the configured median and p95', async () => {
    tb = await testbed(
      { regions: ['CN', 'US'], background: { latency_ms: { median: 300, p95: 1500 } } },
      { rateLimit: false },
    );
    const us = await account(tb.url, 'us', 'US');
    const cn = await account(tb.url, 'cn', 'CN');
    const c = await direct(us, cn);
    const n = 1500;
    for (let i = 0; i < n; i++) await us.send(c, `m${i}`);
    expect(await cn.received(c)).toEqual([]);
    tb.clock.advance(3_600_000);
    const latencies = (await cn.received(c))
      .map((m) => Date.parse(m.delivered_at) - Date.parse(m.at))
      .sort((x, y) => x - y);
    expect(latencies).toHaveLength(n);
    expect(quantile(latencies, 0.5)).toBeGreaterThan(300 * 0.9);
    expect(quantile(latencies, 0.5)).toBeLessThan(300 * 1.1);
    expect(quantile(latencies, 0.95)).toBeGreaterThan(1500 * 0.85);
    expect(quantile(latencies, 0.95)).toBeLessThan(1500 * 1.15);
  });
});

describe('server-sent events', () => {
  it('streams deliveries live and resumes after a reconnect with Last-Event-ID without loss', async () => {
    tb = await testbed({
      regions: ['CN', 'US'],
      rules: [{ id: 'slow', match: { any: ['slow'] }, action: 'delay', delay_ms: 5_000 }],
    });
    const us = await account(tb.url, 'us', 'US');
    const cn = await account(tb.url, 'cn', 'CN');
    const c = await direct(us, cn);

    const first = new SseReader(tb.url, cn.token);
    const sender = new SseReader(tb.url, us.token);
    streams.push(first, sender);
    await Promise.all([first.ready, sender.ready]);
    await us.send(c, 'one');
    await us.send(c, 'slow two');
    await us.send(c, 'three');
    await first.next(2);
    expect(first.messages().map((m) => m.text)).toEqual(['one', 'three']);
    const lastId = first.events.at(-1)?.id;
    expect(lastId).toMatch(/^\d+$/);
    first.close();

    // While disconnected: the delayed message falls due and two more arrive.
    tb.clock.advance(5_000);
    await us.send(c, 'four');
    await us.send(c, 'five');

    const resumed = new SseReader(tb.url, cn.token, lastId);
    streams.push(resumed);
    await resumed.ready;
    await resumed.next(3);
    expect(resumed.messages().map((m) => m.text)).toEqual(['slow two', 'four', 'five']);
    await us.send(c, 'six');
    await resumed.next(4);
    expect(resumed.messages().map((m) => m.text)).toEqual(['slow two', 'four', 'five', 'six']);

    // Ids increase; the whole history equals what the list endpoint shows.
    const ids = [...first.events, ...resumed.events].map((e) => Number(e.id));
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    expect((await cn.received(c)).map((m) => m.text)).toEqual([
      'one',
      'three',
      'slow two',
      'four',
      'five',
      'six',
    ]);

    // A fresh connection without Last-Event-ID replays nothing; the sender never sees its own messages.
    const fresh = new SseReader(tb.url, cn.token);
    streams.push(fresh);
    await fresh.ready;
    await new Promise((r) => setTimeout(r, 100));
    expect(fresh.events).toEqual([]);
    expect(sender.events).toEqual([]);
  });

  it('accepts the token as a query parameter and refuses a missing one', async () => {
    tb = await testbed({ regions: ['CN'] });
    const cn = await account(tb.url, 'cn', 'CN');
    const ok = await fetch(`${tb.url}/api/stream?token=${cn.token}`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await ok.body?.cancel();
    const refused = await fetch(`${tb.url}/api/stream`);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: 'login_required' });
  });

  it('sends a ping comment at the configured interval', async () => {
    tb = await testbed({ regions: ['CN'] }, { pingIntervalMs: 50 });
    const cn = await account(tb.url, 'cn', 'CN');
    const res = await fetch(`${tb.url}/api/stream?token=${cn.token}`);
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes(': ping')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    expect(text).toContain(': ping\n\n');
  });
});
