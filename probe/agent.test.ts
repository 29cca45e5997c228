import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CanaryAssignment } from '../protocol/index.ts';
import { loopbackNetwork } from './adapters/example/loopback.ts';
import { checkinPhaseMs, MAX_CHECKIN_PHASE_MS, type ProbeHandle, startProbe } from './agent.ts';
import { parseConfig } from './config.ts';
import { openProbeStore } from './store.ts';
import { type FakeCollector, startFakeCollector } from './testing/fake-collector.ts';

const logger = pino({ level: 'silent' });
let dir: string;
let fc: FakeCollector;
let probe: ProbeHandle | undefined;
let network: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd-agent-'));
  network = `agent-${randomUUID()}`;
});
afterEach(async () => {
  await probe?.stop();
  probe = undefined;
  await fc?.close();
  await rm(dir, { recursive: true, force: true });
});

function config(checkinCron = '0 0 1 1 *') {
  return parseConfig(
    `
collector_url: ${fc.url}
enrollment_token: test-enrollment-token-0001
data_dir: ${dir}
country: US
asn: 64500
checkin_cron: "${checkinCron}"
pacing: { min_ms: 0, max_ms: 0 }
accounts:
  - platform: example
    handle: ann
    region: US
    credentials: { password: pw-ann }
    settings:
      network: ${network}
      conversations: [{ id: g1, kind: group, members: [ann, li] }]
  - platform: example
    handle: li
    region: CN
    credentials: { password: pw-li }
    settings: { network: ${network} }
`,
    {},
  );
}

function canary(over: Partial<CanaryAssignment> = {}): CanaryAssignment {
  const nonce = `sd${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  return {
    canary_id: randomUUID(),
    campaign_id: '00000000-0000-4000-8000-00000000cafe',
    platform: 'example',
    sender: 'ann',
    conversation: 'g1',
    text: `test message ${nonce}`,
    nonce,
    send_at: new Date(Date.now() + 300).toISOString(),
    deadline_at: new Date(Date.now() + 60_000).toISOString(),
    ...over,
  };
}

async function until(cond: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('probe agent', () => {
  it('checks in on its schedule at a steady phase of its own, so the gap between check-ins says when the next comes', async () => {
    fc = await startFakeCollector();
    probe = await startProbe(config('* * * * * *'), { logger, checkinOnStart: false });
    await until(() => fc.checkinTimes.length >= 6, 12_000);
    const phase = checkinPhaseMs(probe.probeId, 1000);
    const times = fc.checkinTimes.slice(0, 6);
    // Each at the probe's phase past the second (a check-in takes a few ms on loopback), so
    // whole seconds apart: one tick apart, or more where a loaded machine skipped a tick (node-cron
    // misses an execution the event loop was too busy for). A fresh random delay of up to 5 s a
    // tick fails both.
    for (const t of times) expect((((t % 1000) - phase + 1000) % 1000) / 1000).toBeLessThan(0.3);
    for (let i = 1; i < times.length; i++) {
      const gap = times[i]! - times[i - 1]!;
      const ticks = Math.max(1, Math.round(gap / 1000));
      expect(Math.abs(gap - ticks * 1000)).toBeLessThan(300);
    }
  });

  it('draws its check-in phase from its id: the same every time, under half the period, at most 5 s', () => {
    const ids = Array.from({ length: 200 }, () => randomUUID());
    for (const id of ids) {
      expect(checkinPhaseMs(id, 60_000)).toBe(checkinPhaseMs(id, 60_000));
      expect(checkinPhaseMs(id, 60_000)).toBeLessThan(MAX_CHECKIN_PHASE_MS);
      expect(checkinPhaseMs(id, 2000)).toBeLessThan(1000);
    }
    expect(checkinPhaseMs(ids[0]!, 1)).toBe(0);
    expect(checkinPhaseMs(ids[0]!, 0)).toBe(0);
    // Spread: 200 probes on one minute's schedule fall in most of the ten half-second slices.
    expect(new Set(ids.map((id) => Math.floor(checkinPhaseMs(id, 60_000) / 500))).size).toBe(10);
  });

  it('registers, checks in, sends a canary at send_at and records its receipt', async () => {
    fc = await startFakeCollector({ skewMs: 3_600_000 }); // the collector's clock is an hour ahead
    const c = canary();
    c.send_at = new Date(Date.now() + 3_600_000 + 500).toISOString(); // collector clock
    c.deadline_at = new Date(Date.now() + 3_600_000 + 60_000).toISOString();
    fc.handOut.push(c);
    const t = Date.now();
    probe = await startProbe(config(), { logger, backoff: { baseMs: 20, maxMs: 100 } });
    expect((await stat(join(dir, 'identity.json'))).mode & 0o777).toBe(0o600);

    const ci = fc.checkins[0]!;
    expect(ci.accounts.map((a) => `${a.handle}:${a.region}:${a.state}`).sort()).toEqual([
      'ann:US:active',
      'li:CN:active',
    ]);
    expect(ci.conversations).toContainEqual(
      expect.objectContaining({ platform: 'example', ref: 'g1', kind: 'group', members: ['ann', 'li'] }),
    );
    expect(JSON.stringify(ci)).not.toContain('pw-ann');

    // sent and received travel in separate uploads: wait for both.
    await until(
      () => fc.stored.some((e) => e.type === 'received') && fc.stored.some((e) => e.type === 'sent'),
    );
    const sent = fc.stored.find((e) => e.type === 'sent')!;
    const received = fc.stored.find((e) => e.type === 'received')!;
    expect(sent).toMatchObject({ canary_id: c.canary_id, account: 'ann', text: c.text, conversation: 'g1' });
    expect(Date.parse(sent.at as string) - t).toBeGreaterThanOrEqual(400); // waited for send_at, not an hour
    expect(Math.abs((sent.clock_offset_ms as number) - 3_600_000)).toBeLessThan(1000);
    expect(received).toMatchObject({ account: 'li', nonce: c.nonce, text: c.text, from: 'ann' });
    expect(fc.stored.filter((e) => e.type === 'received')).toHaveLength(1); // not the sender's own copy
    // Only the very first check-in fell outside the signature window (an hour of skew);
    // the probe re-estimated from the collector's Date header and got through.
    expect(fc.signatureFailures).toBe(1);
    expect(fc.checkins).toHaveLength(1);
  });

  it('never sends a canary twice: not on a second hand-out, not after a restart', async () => {
    fc = await startFakeCollector();
    const seen: string[] = [];
    const li = loopbackNetwork(network);
    li.login('spy', 'x');
    const later = canary({ send_at: new Date(Date.now() + 2500).toISOString() });
    fc.handOut.push(later);
    probe = await startProbe(config(), { logger, flushTimeoutMs: 1000 });
    await probe.stop(); // stopped before send_at: the canary stays in the ledger
    probe = undefined;
    fc.handOut.push(later); // the collector hands it out again
    probe = await startProbe(config(), { logger, backoff: { baseMs: 20, maxMs: 100 } });
    const unlisten = li.listen('li', (m) => seen.push(m.text));
    await until(() => fc.stored.some((e) => e.type === 'sent'));
    await probe.checkin();
    await new Promise((r) => setTimeout(r, 500));
    unlisten();
    expect(fc.stored.filter((e) => e.type === 'sent' && e.canary_id === later.canary_id)).toHaveLength(1);
    expect(seen.filter((t) => t === later.text)).toHaveLength(1);
  });

  it('records a send interrupted by a crash as failed (send_timeout) and does not retry it', async () => {
    fc = await startFakeCollector();
    const c = canary();
    // What a probe killed between "sending" and the adapter's answer leaves behind.
    const store = await openProbeStore(join(dir, 'outbox'), { logger, upload: async () => [] });
    await store.ledger.assign(c);
    await store.ledger.markSending(c.canary_id);
    await store.close();
    const seen: string[] = [];
    const unlisten = loopbackNetwork(network).listen('li', (m) => seen.push(m.text));
    probe = await startProbe(config(), { logger, backoff: { baseMs: 20, maxMs: 100 } });
    await until(() => fc.stored.some((e) => e.canary_id === c.canary_id));
    await new Promise((r) => setTimeout(r, 300));
    unlisten();
    const evs = fc.stored.filter((e) => e.canary_id === c.canary_id);
    expect(evs).toEqual([expect.objectContaining({ type: 'failed', failure: 'send_timeout' })]);
    expect(seen).toEqual([]);
  });

  it('records rejected with the notice and a canary for an unknown account as failed', async () => {
    fc = await startFakeCollector();
    const cfg = config();
    cfg.accounts[0]!.settings.notice_terms = ['法轮功'];
    const rejected = canary({ text: '法轮功 sdzzzzzzzzzzzz', nonce: 'sdzzzzzzzzzzzz' });
    const stranger = canary({ sender: 'nobody' });
    fc.handOut.push(rejected, stranger);
    probe = await startProbe(cfg, { logger, backoff: { baseMs: 20, maxMs: 100 } });
    await until(() => fc.stored.length >= 2);
    expect(fc.stored.find((e) => e.canary_id === rejected.canary_id)).toMatchObject({
      type: 'rejected',
      failure: 'notice_shown',
      notice: expect.any(String),
    });
    expect(fc.stored.find((e) => e.canary_id === stranger.canary_id)).toMatchObject({
      type: 'failed',
      failure: 'adapter_error',
    });
  });

  it('an upload refused for a clock far off re-seeds the clock and gets through without waiting for the schedule', async () => {
    const opts = { skewMs: 0 };
    fc = await startFakeCollector(opts);
    probe = await startProbe(config(), { logger, backoff: { baseMs: 20, maxMs: 100 } });
    // The clocks part by 10 minutes where the probe cannot see it (its own clock did not
    // step): its next signed request falls outside the collector's ±5 min window.
    opts.skewMs = 600_000;
    const checkinsBefore = fc.checkins.length;
    const net = loopbackNetwork(network);
    net.login('spy', 'x');
    net.post(net.conversation('g1')!, 'ann', 'a receipt sdqqqqqqqqqqqq');
    // The schedule never checks in ("0 0 1 1 *"): only the refused upload can bring the re-seed.
    await until(() => fc.stored.some((e) => e.type === 'received' && e.nonce === 'sdqqqqqqqqqqqq'));
    expect(fc.signatureFailures).toBeGreaterThanOrEqual(1);
    expect(fc.checkins.length).toBeGreaterThan(checkinsBefore);
    expect(Math.abs((probe.status().clock?.offset_ms ?? 0) - 600_000)).toBeLessThan(2000);
  });
});
