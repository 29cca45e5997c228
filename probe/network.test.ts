import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CanaryAssignment } from '../protocol/index.ts';
import { loopbackNetwork } from './adapters/example/loopback.ts';
import { type ProbeHandle, startProbe } from './agent.ts';
import { parseConfig } from './config.ts';
import { formatLocalStatus, readLocalStatus } from './status.ts';
import { openProbeStore } from './store.ts';
import { type FakeCollector, startFakeCollector } from './testing/fake-collector.ts';
import { sampleReceived } from './testing/sample-events.ts';

let dir: string;
let fc: FakeCollector | undefined;
let probe: ProbeHandle | undefined;
let network: string;
let lines: { msg: string; [k: string]: unknown }[];
const logger = () =>
  pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as { msg: string }) });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd-net-'));
  network = `net-${randomUUID()}`;
  lines = [];
});
afterEach(async () => {
  await probe?.stop();
  probe = undefined;
  await fc?.close();
  fc = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** An address where nothing listens (a port we had and closed). */
async function deadUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

function config(urls: string[]) {
  return parseConfig(`
collector_urls: [${urls.join(', ')}]
enrollment_token: test-enrollment-token-0001
data_dir: ${dir}
country: US
asn: 64500
checkin_cron: "0 0 1 1 *"
pacing: { min_ms: 0, max_ms: 0 }
accounts:
  - platform: example
    handle: ann
    region: US
    credentials: { password: pw-ann }
    settings:
      network: ${network}
      conversations: [{ id: g1, kind: group, members: [ann, li] }]
`);
}

function canary(): CanaryAssignment {
  const nonce = `sd${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  return {
    canary_id: randomUUID(),
    campaign_id: '00000000-0000-4000-8000-00000000cafe',
    platform: 'example',
    sender: 'ann',
    conversation: 'g1',
    text: `test message ${nonce}`,
    nonce,
    send_at: new Date(Date.now() + 100).toISOString(),
    deadline_at: new Date(Date.now() + 60_000).toISOString(),
  };
}

describe('probe on an unreliable network', () => {
  it('registers and checks in through the second collector URL when the first does not answer', async () => {
    fc = await startFakeCollector();
    probe = await startProbe(config([await deadUrl(), fc.url]), { logger: logger() });
    expect(fc.probes.size).toBe(1);
    expect(fc.checkins).toHaveLength(1);
    expect(probe.status().lastCheckinAt).toBeDefined();
    const status = await readLocalStatus(dir);
    expect(status.running?.collector_url).toBe(fc.url);
  });

  it('keeps trying to register with backoff while the collector is down, and registers when it comes up', async () => {
    fc = await startFakeCollector();
    fc.down = true;
    const collector = fc;
    setTimeout(() => {
      collector.down = false;
    }, 600);
    const t = Date.now();
    probe = await startProbe(config([fc.url]), { logger: logger(), retry: { baseMs: 50, maxMs: 200 } });
    expect(Date.now() - t).toBeGreaterThanOrEqual(550);
    expect(fc.probes.size).toBe(1);
    const retries = lines.filter((l) => l.msg === 'cannot register with the collector yet; trying again');
    expect(retries.length).toBeGreaterThanOrEqual(2);
    const waits = retries.map((l) => l.retry_in_ms as number);
    expect(waits[0]).toBeLessThanOrEqual(50);
    expect(Math.max(...waits)).toBeGreaterThan(50); // it backs off
    expect(fc.checkins).toHaveLength(1);
  });

  it('tries a failed check-in again with backoff, long before the next cron tick', async () => {
    fc = await startFakeCollector();
    probe = await startProbe(config([fc.url]), { logger: logger(), retry: { baseMs: 100, maxMs: 400 } });
    expect(fc.checkins).toHaveLength(1);
    fc.down = true;
    expect(await probe.checkin()).toBeUndefined();
    expect((await readLocalStatus(dir)).running?.last_checkin_error).toMatch(/503/);
    const collector = fc;
    setTimeout(() => {
      collector.down = false;
    }, 500);
    const end = Date.now() + 5000;
    while (collector.checkins.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(fc.checkins).toHaveLength(2); // the cron runs once a year here: this was the retry
    expect(
      lines.filter((l) => l.msg === 'check-in failed; trying again with backoff').length,
    ).toBeGreaterThanOrEqual(2);
    // the status file is rewritten once the answer was handled
    let after = await readLocalStatus(dir);
    while (after.running?.last_checkin_error && Date.now() < end + 2000) {
      await new Promise((r) => setTimeout(r, 20));
      after = await readLocalStatus(dir);
    }
    expect(after.running?.last_checkin_error).toBeNull();
  });

  it('acts on nothing from a check-in answer that does not match the protocol, and logs it', async () => {
    fc = await startFakeCollector();
    const c = canary();
    fc.handOut.push(c);
    fc.alterCheckin = (answer) => {
      const canaries = answer.canaries as Record<string, unknown>[];
      delete canaries[0]!.nonce; // a canary with a missing field
      return answer;
    };
    const seen: string[] = [];
    const li = loopbackNetwork(network);
    li.login('li', 'x');
    const unlisten = li.listen('li', (m) => seen.push(m.text));
    probe = await startProbe(config([fc.url]), {
      logger: logger(),
      retry: { baseMs: 60_000, maxMs: 60_000 },
    });
    await new Promise((r) => setTimeout(r, 600));
    unlisten();
    expect(seen).toEqual([]);
    expect(probe.status().scheduled).toBe(0);
    expect(probe.status().lastCheckinError).toMatch(/canaries\/0.*nonce|nonce/);
    expect(lines.some((l) => l.msg === 'check-in answer does not match the protocol; ignored')).toBe(true);
    expect(await probe.flush(2000)).toBe(true);
    expect(fc.stored.filter((e) => e.canary_id === c.canary_id)).toEqual([]);
  });

  it('probe status reads the running probe’s data folder', async () => {
    fc = await startFakeCollector();
    probe = await startProbe(config([fc.url]), { logger: logger() });
    const s = await readLocalStatus(dir);
    expect(s.probeId).toBe(probe.probeId);
    expect(s.running?.pid).toBe(process.pid);
    expect(s.running?.accounts).toEqual([{ platform: 'example', handle: 'ann', state: 'active' }]);
    expect(s.backlog).toBe(0);
    expect(s.deadLetters).toBe(0);
    const text = formatLocalStatus(s);
    for (const field of [
      'identity:',
      'collector:',
      'last check-in:',
      'clock offset:',
      'outbox backlog:',
      'dead letters:',
      'example/ann: active',
    ]) {
      expect(text).toContain(field);
    }
    expect(text).toContain(probe.probeId);
    expect(text).toContain(fc.url);
  });

  it('probe status counts the outbox backlog and dead letters from the journal while the store is open', async () => {
    const store = await openProbeStore(join(dir, 'outbox'), {
      logger: pino({ level: 'silent' }),
      upload: async (events) =>
        events.map((ev, index) => ({ index, event_id: ev.event_id, status: 'refused', reason: 'test' })),
      backoff: { baseMs: 10, maxMs: 50 },
    });
    try {
      for (let i = 0; i < 3; i++) await store.outbox.add(sampleReceived(i));
      let s = await readLocalStatus(dir);
      expect([s.backlog, s.deadLetters, s.probeId, s.running]).toEqual([3, 0, undefined, undefined]);
      expect(formatLocalStatus(s)).toContain('identity:         not registered yet');
      store.outbox.start();
      expect(await store.outbox.flush(5000)).toBe(true);
      s = await readLocalStatus(dir);
      expect([s.backlog, s.deadLetters]).toEqual([0, 3]);
    } finally {
      await store.close();
    }
  });
});
