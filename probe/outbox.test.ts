import { type ChildProcess, spawn } from 'node:child_process';
import { appendFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LIMITS } from '../protocol/index.ts';
import { CollectorClient } from './client.ts';
import { loadOrRegister } from './identity.ts';
import { openProbeStore } from './store.ts';
import { type FakeCollector, type StoredEvent, startFakeCollector } from './testing/fake-collector.ts';
import { sampleReceived } from './testing/sample-events.ts';

const logger = pino({ level: 'silent' });
let dir: string;
let fc: FakeCollector | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd-outbox-'));
});
afterEach(async () => {
  await fc?.close();
  fc = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function signedClient(url: string) {
  const client = new CollectorClient({ baseUrl: url, timeoutMs: 5000 });
  const identity = await loadOrRegister({
    dataDir: dir,
    collectorUrl: url,
    enrollmentToken: 'test-enrollment-token-0001',
    country: 'US',
    asn: 64500,
    client,
    logger,
  });
  client.setIdentity(identity);
  return client;
}

function runWriter(args: string[]): { child: ChildProcess; durable: Set<string>; lines: string[] } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'testing/outbox-writer.ts'), ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const durable = new Set<string>();
  const lines: string[] = [];
  let buf = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let nl = buf.indexOf('\n');
    while (nl !== -1) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      lines.push(line);
      if (line.startsWith('durable ')) durable.add(line.slice(8));
      nl = buf.indexOf('\n');
    }
  });
  child.stderr?.on('data', (d: Buffer) => lines.push(`stderr: ${d.toString('utf8')}`));
  return { child, durable, lines };
}

const exited = (child: ChildProcess) =>
  new Promise<NodeJS.Signals | number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.signalCode ?? child.exitCode);
    else child.once('exit', (code, signal) => resolve(signal ?? code));
  });

/** Reopens the outbox in this process and uploads everything left. */
async function recoverAndFlush(url: string) {
  const client = await signedClient(url);
  const store = await openProbeStore(join(dir, 'outbox'), {
    logger,
    upload: (events) => client.uploadEvents(events),
    backoff: { baseMs: 10, maxMs: 50 },
  });
  const empty = await store.outbox.flush(20_000);
  const backlog = store.outbox.backlog();
  await store.close();
  return { empty, backlog };
}

describe('outbox crash safety', () => {
  it('loses nothing and stores nothing twice when killed with SIGKILL while the collector holds a batch', async () => {
    fc = await startFakeCollector();
    const w = { current: undefined as ReturnType<typeof runWriter> | undefined };
    // The second batch is stored by the collector, then the probe dies before the answer.
    fc.onEvents = async (n) => {
      if (n === 2) {
        w.current?.child.kill('SIGKILL');
        await exited(w.current!.child);
      }
    };
    w.current = runWriter([dir, fc.url, '1200', 'append-first']);
    expect(await exited(w.current.child)).toBe('SIGKILL');
    expect(w.current.lines).toContain('appended');
    expect(w.current.durable.size).toBe(1200);
    expect(fc.stored.length).toBe(1000); // two batches of 500 reached the database

    const { empty, backlog } = await recoverAndFlush(fc.url);
    expect(empty).toBe(true);
    expect(backlog).toBe(0);
    const storedIds = new Set(fc.stored.map((e) => e.event_id));
    for (const id of w.current.durable) expect(storedIds.has(id)).toBe(true);
    expect(fc.stored.length).toBe(1200);
    expect([...fc.storedCount.values()].every((n) => n === 1)).toBe(true);
    expect(fc.duplicates).toBe(500); // the unacknowledged batch came back as duplicates
    expect(fc.signatureFailures).toBe(0);
  });

  it('loses nothing when killed with SIGKILL at random moments while adding and uploading', async () => {
    fc = await startFakeCollector();
    const allDurable = new Set<string>();
    let killedMidway = 0;
    for (let round = 0; round < 3; round++) {
      const w = runWriter([dir, fc.url, '2000', 'concurrent']);
      // Kill it at a random point of its progress (not of time: on an idle machine the
      // writer can finish all 2,000 events within a fixed delay), while it is still
      // adding and uploading.
      const target = 1 + Math.floor(Math.random() * 1500);
      const started = Date.now();
      while (w.durable.size < target && w.child.exitCode === null && Date.now() - started < 30_000) {
        await new Promise((r) => setTimeout(r, 1));
      }
      w.child.kill('SIGKILL');
      await exited(w.child);
      for (const id of w.durable) allDurable.add(id);
      if (!w.lines.includes('flushed')) killedMidway += 1;
    }
    expect(killedMidway).toBeGreaterThan(0);
    expect(allDurable.size).toBeGreaterThan(0);
    const { empty } = await recoverAndFlush(fc.url);
    expect(empty).toBe(true);
    const storedIds = new Set(fc.stored.map((e) => e.event_id));
    const lost = [...allDurable].filter((id) => !storedIds.has(id));
    expect(lost).toEqual([]);
    expect([...fc.storedCount.values()].every((n) => n === 1)).toBe(true);
  });
});

describe('outbox', () => {
  it('moves refused events to the dead-letter file and uploads the rest', async () => {
    fc = await startFakeCollector({
      refuse: (ev) => (ev.conversation === 'bad' ? '/at: must be date-time' : undefined),
    });
    const client = await signedClient(fc.url);
    const store = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: (e) => client.uploadEvents(e),
    });
    const good = Array.from({ length: 5 }, (_, i) => sampleReceived(i));
    const bad = [sampleReceived(10, { conversation: 'bad' }), sampleReceived(11, { conversation: 'bad' })];
    for (const ev of [good[0]!, bad[0]!, good[1]!, good[2]!, bad[1]!, good[3]!, good[4]!])
      await store.outbox.add(ev);
    expect(await store.outbox.flush(5000)).toBe(true);
    expect(fc.stored.map((e) => e.event_id).sort()).toEqual(good.map((e) => e.event_id).sort());
    expect(store.outbox.deadLetters()).toBe(2);
    const lines = (await readFile(store.deadLetterPath, 'utf8')).trim().split('\n');
    const dead = lines.map((l) => JSON.parse(l) as { reason: string; event: { event_id: string } });
    expect(dead.map((d) => d.event.event_id).sort()).toEqual(bad.map((e) => e.event_id).sort());
    expect(dead[0]!.reason).toContain('/at');
    await store.close();
    // Reopened, nothing is pending and the dead letters are still counted.
    const again = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: (e) => client.uploadEvents(e),
    });
    expect(again.outbox.backlog()).toBe(0);
    expect(again.outbox.deadLetters()).toBe(2);
    await again.close();
  });

  it('retries with backoff until the collector comes back', async () => {
    fc = await startFakeCollector();
    const client = await signedClient(fc.url);
    fc.down = true;
    const store = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: (e) => client.uploadEvents(e),
      backoff: { baseMs: 20, maxMs: 200 },
    });
    store.outbox.start();
    for (let i = 0; i < 3; i++) await store.outbox.add(sampleReceived(i));
    await new Promise((r) => setTimeout(r, 400));
    expect(store.outbox.failures).toBeGreaterThanOrEqual(3);
    expect(store.outbox.backlog()).toBe(3);
    expect(store.outbox.lastError).toContain('503');
    fc.down = false;
    const deadline = Date.now() + 5000;
    while (store.outbox.backlog() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(store.outbox.backlog()).toBe(0);
    expect(fc.stored.length).toBe(3);
    expect(store.outbox.failures).toBe(0);
    await store.close();
  });

  it('drains at once when a check-in shows the collector is back, not after the outage backoff', async () => {
    fc = await startFakeCollector();
    const client = await signedClient(fc.url);
    fc.down = true;
    const store = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: (e) => client.uploadEvents(e),
      // After a few failures the next try is at least 30 s away.
      backoff: { baseMs: 10_000, maxMs: 60_000 },
    });
    store.outbox.start();
    for (let i = 0; i < 3; i++) await store.outbox.add(sampleReceived(i));
    const failing = Date.now();
    while (store.outbox.failures < 1 && Date.now() - failing < 5000)
      await new Promise((r) => setTimeout(r, 10));
    expect(store.outbox.failures).toBe(1);
    fc.down = false;
    // Without a sign of the collector the batch waits out its backoff (5–10 s).
    await new Promise((r) => setTimeout(r, 300));
    expect(store.outbox.backlog()).toBe(3);
    store.outbox.noteCollectorUp();
    const deadline = Date.now() + 3000;
    while (store.outbox.backlog() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(store.outbox.backlog()).toBe(0);
    expect(fc.stored.length).toBe(3);
    await store.close();
  });

  it('grows the backoff exponentially with jitter, capped', async () => {
    const store = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: async () => [],
      backoff: { baseMs: 100, maxMs: 1000 },
      random: () => 1,
    });
    expect([1, 2, 3, 4, 5, 10].map((n) => store.outbox.backoffMs(n))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
    await store.close();
    const low = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: async () => [],
      backoff: { baseMs: 100, maxMs: 1000 },
      random: () => 0,
    });
    expect(low.outbox.backoffMs(3)).toBe(200);
    await low.close();
  });

  it('uploads in batches of at most LIMITS.eventsPerBatch', async () => {
    const sizes: number[] = [];
    const store = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: async (events) => {
        sizes.push(events.length);
        return events.map((e, index) => ({ index, event_id: e.event_id, status: 'stored' as const }));
      },
    });
    await Promise.all(Array.from({ length: 1100 }, (_, i) => store.outbox.add(sampleReceived(i))));
    expect(await store.outbox.flush(10_000)).toBe(true);
    expect(sizes.every((n) => n <= LIMITS.eventsPerBatch)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(1100);
    await store.close();
  });

  it('uploads new events that keep coming at most once a turn, together; the first of a quiet spell and a flush at once', async () => {
    const starts: { at: number; n: number }[] = [];
    const store = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: async (events) => {
        starts.push({ at: Date.now(), n: events.length });
        return events.map((e, index) => ({ index, event_id: e.event_id, status: 'stored' as const }));
      },
      minUploadIntervalMs: 1000,
    });
    const waitEmpty = async () => {
      const deadline = Date.now() + 10_000;
      while (store.outbox.backlog() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      return store.outbox.backlog();
    };
    store.outbox.start();
    // A quiet outbox uploads its first new event at once.
    const t0 = Date.now();
    await store.outbox.add(sampleReceived(0));
    expect(await waitEmpty()).toBe(0);
    expect(starts[0]!.at - t0).toBeLessThan(700);
    // Receipts every 50 ms for 1.5 s: a few uploads, a turn apart, not one per event (31
    // without the turn). A loaded machine that takes longer to add them gets a turn more a second.
    const tAdds = Date.now();
    for (let i = 1; i <= 30; i++) {
      await store.outbox.add(sampleReceived(i));
      await new Promise((r) => setTimeout(r, 50));
    }
    const addsMs = Date.now() - tAdds;
    expect(await waitEmpty()).toBe(0);
    expect(starts.reduce((a, s) => a + s.n, 0)).toBe(31);
    expect(starts.length).toBeLessThanOrEqual(3 + Math.ceil(addsMs / 1000));
    for (let i = 1; i < starts.length; i++)
      expect(starts[i]!.at - starts[i - 1]!.at).toBeGreaterThanOrEqual(990);
    // A flush does not wait for the turn.
    const before = starts.length;
    const last = starts.at(-1)!.at;
    await store.outbox.add(sampleReceived(100));
    const t1 = Date.now();
    expect(await store.outbox.flush(5000)).toBe(true);
    expect(starts.length).toBe(before + 1);
    expect(starts.at(-1)!.at - last).toBeLessThan(1000);
    expect(Date.now() - t1).toBeLessThan(700);
    await store.close();
  });

  it('keeps events the collector did not answer for', async () => {
    let calls = 0;
    const store = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: async (events) => {
        calls += 1;
        // First answer covers only the first event; later answers cover all.
        const answered = calls === 1 ? events.slice(0, 1) : events;
        return answered.map((e, index) => ({ index, event_id: e.event_id, status: 'stored' as const }));
      },
    });
    await store.outbox.add(sampleReceived(1));
    await store.outbox.add(sampleReceived(2));
    expect(await store.outbox.flush(5000)).toBe(true);
    expect(calls).toBe(2);
    await store.close();
  });

  it('backs off from a collector that never answers for an event instead of spinning', async () => {
    let calls = 0;
    const store = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: async () => {
        calls += 1;
        return [];
      },
      backoff: { baseMs: 100, maxMs: 1000 },
    });
    store.outbox.start();
    await store.outbox.add(sampleReceived(1));
    await new Promise((r) => setTimeout(r, 350));
    expect(calls).toBeGreaterThanOrEqual(1);
    expect(calls).toBeLessThanOrEqual(8);
    expect(store.outbox.backlog()).toBe(1);
    await store.close();
  });

  it('sets aside a corrupt trailing record after a crash and keeps the rest', async () => {
    const store = await openProbeStore(join(dir, 'outbox'), { logger, upload: async () => [] });
    const evs = [sampleReceived(1), sampleReceived(2)];
    for (const ev of evs) await store.outbox.add(ev);
    await store.close();
    // A write torn by kill -9: half a record, no newline.
    await appendFile(join(dir, 'outbox', 'journal.log'), '0123456789abcdef {"k":"ev","ev":{"type":"rece');
    const reopened = await openProbeStore(join(dir, 'outbox'), { logger, upload: async () => [] });
    expect(reopened.setAside).toBe(1);
    expect(reopened.outbox.backlog()).toBe(2);
    expect(evs.every((e) => reopened.outbox.has(e.event_id))).toBe(true);
    const aside = await readFile(join(dir, 'outbox', 'journal.log.corrupt.ndjson'), 'utf8');
    expect(aside).toContain('torn trailing record');
    // New records append cleanly after the repair.
    await reopened.outbox.add(sampleReceived(3));
    await reopened.close();
    const third = await openProbeStore(join(dir, 'outbox'), { logger, upload: async () => [] });
    expect(third.setAside).toBe(0);
    expect(third.outbox.backlog()).toBe(3);
    await third.close();
    expect((await readdir(join(dir, 'outbox'))).sort()).toEqual([
      'journal.log',
      'journal.log.corrupt.ndjson',
    ]);
  });
});

describe('outbox with an event the collector fails on', () => {
  const poisoned = (ev: StoredEvent) => ev.conversation === 'poison';
  const waitFor = async (cond: () => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return cond();
  };

  it('stores every good event exactly once and dead-letters the poisoned one with its last error', async () => {
    fc = await startFakeCollector({ poisoned });
    const client = await signedClient(fc.url);
    const store = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: (e) => client.uploadEvents(e),
      backoff: { baseMs: 10, maxMs: 80 },
      poison: { strikes: 3, minSpanMs: 200 },
    });
    const good = Array.from({ length: 60 }, (_, i) => sampleReceived(i));
    const poison = sampleReceived(100, { conversation: 'poison' });
    // Poisoned in the middle of what would be one batch.
    for (const ev of [...good.slice(0, 30), poison, ...good.slice(30)]) await store.outbox.add(ev);
    store.outbox.start();
    // Receipts keep arriving meanwhile, as on a running probe: their uploads show that the
    // collector is up while the poisoned event keeps failing alone.
    let n = 1000;
    const started = Date.now();
    while (store.outbox.deadLetters() === 0 && Date.now() - started < 15_000) {
      const ev = sampleReceived(n++);
      good.push(ev);
      await store.outbox.add(ev);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await waitFor(() => store.outbox.backlog() === 0, 15_000)).toBe(true);
    expect(fc.stored.map((e) => e.event_id).sort()).toEqual(good.map((e) => e.event_id).sort());
    expect([...fc.storedCount.values()].every((n) => n === 1)).toBe(true);
    expect(fc.poisonedRequests).toBeGreaterThanOrEqual(3);
    const dead = (await readFile(store.deadLetterPath, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { reason: string; event: { event_id: string } });
    expect(dead.map((d) => d.event.event_id)).toEqual([poison.event_id]);
    expect(dead[0]!.reason).toContain('HTTP 500');
    expect(dead[0]!.reason).toMatch(/failed \d+ times with this event alone over \d+ s/);
    expect(store.outbox.deadLetters()).toBe(1);
    await store.close();
  });

  it('uploads later events while a poisoned one is still being retried', async () => {
    fc = await startFakeCollector({ poisoned });
    const client = await signedClient(fc.url);
    const store = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: (e) => client.uploadEvents(e),
      backoff: { baseMs: 20, maxMs: 200 },
      // Never given up during this test: it must not hold anything back meanwhile.
      poison: { strikes: 1000, minSpanMs: 3_600_000 },
      // Each new event goes as soon as it is on disk: what is measured is the wait behind the
      // poisoned one, not the turn that spaces out uploads (tested below).
      minUploadIntervalMs: 0,
    });
    store.outbox.start();
    const poison = sampleReceived(100, { conversation: 'poison' });
    await store.outbox.add(poison);
    await store.outbox.add(sampleReceived(0));
    expect(await waitFor(() => fc!.stored.length === 1, 5000)).toBe(true);
    const storedAfter: number[] = [];
    for (let i = 1; i <= 8; i++) {
      const ev = sampleReceived(i);
      const t0 = Date.now();
      await store.outbox.add(ev);
      expect(await waitFor(() => fc!.storedCount.has(ev.event_id), 5000)).toBe(true);
      storedAfter.push(Date.now() - t0);
      await new Promise((r) => setTimeout(r, 30));
    }
    // Each new event waits at most one backoff step after the poisoned one's failure
    // (base 20 ms, so ≤ 20 ms plus the request), never behind the poisoned one's own,
    // growing backoff (capped at 200 ms here, 5 min by default).
    expect(Math.max(...storedAfter)).toBeLessThan(400);
    expect(store.outbox.has(poison.event_id)).toBe(true);
    expect(store.outbox.backlog()).toBe(1);
    expect(store.outbox.deadLetters()).toBe(0);
    expect(fc.poisonedRequests).toBeGreaterThanOrEqual(2);
    await store.close();
  });

  it('dead-letters an event the collector refuses at once, without retrying it', async () => {
    fc = await startFakeCollector({
      refuse: (ev) => (ev.conversation === 'bad' ? '/events/0/text: must not contain U+0000' : undefined),
    });
    const client = await signedClient(fc.url);
    const store = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: (e) => client.uploadEvents(e),
    });
    const bad = sampleReceived(1, { conversation: 'bad' });
    await store.outbox.add(bad);
    await store.outbox.add(sampleReceived(2));
    expect(await store.outbox.flush(5000)).toBe(true);
    expect(fc.eventRequests).toBe(1);
    expect(fc.stored.length).toBe(1);
    const dead = JSON.parse((await readFile(store.deadLetterPath, 'utf8')).trim()) as {
      reason: string;
      event: { event_id: string };
    };
    expect(dead.event.event_id).toBe(bad.event_id);
    expect(dead.reason).toContain('U+0000');
    await store.close();
  });

  it('dead-letters nothing during an outage, however long, and uploads everything after it', async () => {
    fc = await startFakeCollector();
    const client = await signedClient(fc.url);
    fc.down = true;
    const store = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: (e) => client.uploadEvents(e),
      backoff: { baseMs: 5, maxMs: 20 },
      poison: { strikes: 1, minSpanMs: 0 },
    });
    store.outbox.start();
    const evs = Array.from({ length: 20 }, (_, i) => sampleReceived(i));
    for (const ev of evs) await store.outbox.add(ev);
    expect(await waitFor(() => store.outbox.failures >= 30, 10_000)).toBe(true);
    expect(store.outbox.deadLetters()).toBe(0);
    expect(store.outbox.backlog()).toBe(20);
    fc.down = false;
    expect(await waitFor(() => store.outbox.backlog() === 0, 10_000)).toBe(true);
    expect(fc.stored.length).toBe(20);
    expect(store.outbox.deadLetters()).toBe(0);
    await store.close();
  });

  it('acknowledges on open an event already in the dead-letter file whose ack was lost', async () => {
    const store = await openProbeStore(join(dir, 'outbox'), { logger, upload: async () => [] });
    const ev = sampleReceived(1);
    await store.outbox.add(ev);
    await store.close();
    // A crash between the dead-letter write and the ack record.
    await appendFile(
      join(dir, 'outbox', 'dead-letter.ndjson'),
      `${JSON.stringify({ dead_lettered_at: new Date().toISOString(), reason: 'x', event: ev })}\n`,
    );
    let uploads = 0;
    const again = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: async (events) => {
        uploads += 1;
        return events.map((e, index) => ({ index, event_id: e.event_id, status: 'stored' as const }));
      },
    });
    expect(again.outbox.backlog()).toBe(0);
    expect(await again.outbox.flush(1000)).toBe(true);
    expect(uploads).toBe(0);
    expect(again.outbox.deadLetters()).toBe(1);
    await again.close();
  });
});

describe('outbox evidence that the collector is up', () => {
  it('dead-letters a lone poisoned event on the strength of successful check-ins, and not without them', async () => {
    fc = await startFakeCollector({ poisoned: (ev) => ev.conversation === 'poison' });
    const client = await signedClient(fc.url);
    const store = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: (e) => client.uploadEvents(e),
      backoff: { baseMs: 5, maxMs: 20 },
      poison: { strikes: 3, minSpanMs: 50 },
    });
    store.outbox.start();
    await store.outbox.add(sampleReceived(1, { conversation: 'poison' }));
    // Nothing else to upload and no check-in: it is indistinguishable from an outage.
    const quiet = Date.now();
    while (fc.poisonedRequests < 10 && Date.now() - quiet < 10_000)
      await new Promise((r) => setTimeout(r, 5));
    expect(fc.poisonedRequests).toBeGreaterThanOrEqual(10);
    expect(store.outbox.deadLetters()).toBe(0);
    // Check-ins succeed (the agent calls noteCollectorUp after each): now it is the event.
    const started = Date.now();
    while (store.outbox.deadLetters() === 0 && Date.now() - started < 10_000) {
      store.outbox.noteCollectorUp();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(store.outbox.deadLetters()).toBe(1);
    expect(store.outbox.backlog()).toBe(0);
    await store.close();
  });
});
