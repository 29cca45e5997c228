/**
 * Child process for the outbox crash tests: registers (or reuses) an identity in
 * DATA_DIR, adds COUNT events to the outbox in chunks and prints `durable <id>` for
 * each once add() resolved, while the uploader runs (or only after every add, with
 * MODE=append-first). The test kills it with SIGKILL at some point.
 *
 *   node --import tsx probe/testing/outbox-writer.ts DATA_DIR COLLECTOR_URL COUNT MODE
 */

import { writeSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { CollectorClient } from '../client.ts';
import { loadOrRegister } from '../identity.ts';
import { openProbeStore } from '../store.ts';
import { sampleReceived } from './sample-events.ts';

const [dataDir, url, countArg, mode] = process.argv.slice(2);
if (!dataDir || !url || !countArg) throw new Error('usage: outbox-writer DATA_DIR URL COUNT [MODE]');
const logger = pino({ level: 'silent' });
const client = new CollectorClient({ baseUrl: url, timeoutMs: 5000 });
const identity = await loadOrRegister({
  dataDir,
  collectorUrl: url,
  enrollmentToken: 'test-enrollment-token-0001',
  country: 'US',
  asn: 64500,
  client,
  logger,
});
client.setIdentity(identity);
const store = await openProbeStore(join(dataDir, 'outbox'), {
  logger,
  upload: (events) => client.uploadEvents(events),
  backoff: { baseMs: 20, maxMs: 100 },
});
const out = (s: string) => writeSync(1, `${s}\n`);
if (mode !== 'append-first') store.outbox.start();
const count = Number(countArg);
for (let i = 0; i < count; i += 50) {
  const chunk = Array.from({ length: Math.min(50, count - i) }, (_, j) => sampleReceived(i + j));
  await Promise.all(chunk.map((ev) => store.outbox.add(ev)));
  out(chunk.map((ev) => `durable ${ev.event_id}`).join('\n'));
}
out('appended');
await store.outbox.flush(60_000);
out('flushed');
await store.close();
