import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CollectorClient } from './client.ts';
import { loadOrRegister } from './identity.ts';
import { openProbeStore } from './store.ts';
import { type FakeCollector, startFakeCollector } from './testing/fake-collector.ts';
import { sampleReceived } from './testing/sample-events.ts';

const logger = pino({ level: 'silent' });
let dir: string;
let fc: FakeCollector | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd-outbox-ignored-'));
});
afterEach(async () => {
  await fc?.close();
  fc = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('outbox', () => {
  it('takes an event the collector answered `ignored` as acknowledged: neither resent nor dead-lettered', async () => {
    fc = await startFakeCollector({
      ignore: (ev) => (ev.conversation === 'lookalike' ? '/events/0/nonce: no canary of ours' : undefined),
    });
    const client = new CollectorClient({ baseUrl: fc.url, timeoutMs: 5000 });
    client.setIdentity(
      await loadOrRegister({
        dataDir: dir,
        collectorUrl: fc.url,
        enrollmentToken: 'test-enrollment-token-0001',
        country: 'US',
        asn: 64500,
        client,
        logger,
      }),
    );
    const store = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: (e) => client.uploadEvents(e),
    });
    const kept = [sampleReceived(0), sampleReceived(1)];
    const lookAlikes = [
      sampleReceived(2, { conversation: 'lookalike' }),
      sampleReceived(3, { conversation: 'lookalike' }),
    ];
    for (const ev of [kept[0]!, lookAlikes[0]!, kept[1]!, lookAlikes[1]!]) await store.outbox.add(ev);
    expect(await store.outbox.flush(5000)).toBe(true);
    expect(store.outbox.backlog()).toBe(0);
    expect(store.outbox.deadLetters()).toBe(0);
    expect(fc.stored.map((e) => e.event_id).sort()).toEqual(kept.map((e) => e.event_id).sort());
    const requests = fc.eventRequests;
    await store.close();
    // Reopened: nothing left to upload, nothing dead-lettered.
    const again = await openProbeStore(join(dir, 'outbox'), {
      logger,
      upload: (e) => client.uploadEvents(e),
    });
    expect(again.outbox.backlog()).toBe(0);
    expect(await again.outbox.flush(1000)).toBe(true);
    expect(fc.eventRequests).toBe(requests);
    expect(await readFile(again.deadLetterPath, 'utf8').catch(() => '')).toBe('');
    await again.close();
  });
});
