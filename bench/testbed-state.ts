/**
 * The testbed's state file (testbed/persist.ts) with long timelines: how long the event loop
 * stalls while one save runs, written whole (one `JSON.stringify` and a synchronous write, as
 * before the sliced saver) against the sliced save the testbed makes while it runs, and the
 * process's memory. In `npm start` the testbed runs in the collector's process: its stalls
 * are the collector's.
 *
 *   npm run bench:testbed-state
 *   npm run bench:testbed-state -- --entries 360000
 *
 * --entries: timeline entries in all (default 120,000: six hours of the demo network, the
 * default history limit; `npm start` appended about 20,000 entries an hour over its five
 * accounts, measured from its state file after three minutes).
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { StateSaver } from '../testbed/persist.ts';
import { Store } from '../testbed/store.ts';

const { values } = parseArgs({ options: { entries: { type: 'string', default: '120000' } } });
const entries = Number(values.entries);
if (!Number.isInteger(entries) || entries < 1) throw new Error('--entries: a positive integer');

const out = (s: string) => process.stdout.write(`${s}\n`);
const handles = ['cn-1', 'cn-2', 'us-1', 'us-2', 'au-1'];
const now = Date.now();
const store = new Store({ now: () => now, history: { maxEntriesPerAccount: entries } });
for (const handle of handles)
  store.addAccount({
    handle,
    region: handle.slice(0, 2).toUpperCase(),
    password: { salt: Buffer.alloc(16), hash: Buffer.alloc(64) },
  });
const at = new Date(now).toISOString();
for (let i = 0; i < entries; i++) {
  store.append(handles[i % handles.length]!, i % 3 === 0 ? 'own' : 'delivered', {
    id: `m${i}`,
    conversation: `c${i % 9}`,
    from: 'cn-1',
    text: `图书馆 这是一条普通的消息，用于对照 sd${i.toString(36)}x7q2 ${i}`,
    at,
    delivered_at: at,
  });
}

const dir = mkdtempSync(join(tmpdir(), 'sd-bench-testbed-state-'));
const file = join(dir, 'state.json');
const stalls = () => {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  return () => {
    h.disable();
    return h.max / 1e6;
  };
};

// Whole, as before: one stringify and one synchronous write.
const wholeStop = stalls();
const t0 = performance.now();
await new Promise((r) => setTimeout(r, 20));
writeFileSync(file, JSON.stringify(store.snapshot()));
await new Promise((r) => setTimeout(r, 20));
const wholeMs = performance.now() - t0 - 40;
const wholeStall = wholeStop();
const mb = readFileSync(file).length / 1e6;

// Sliced: the saver, started by a change, until the file holds the change.
rmSync(file);
const saver = new StateSaver(file, store, pino({ level: 'silent' }), 0);
await new Promise((r) => setTimeout(r, 50));
const slicedStop = stalls();
const t1 = performance.now();
store.newMessageId();
// Each save renames a new file into place: wait for the next inode, then check it holds the change.
const before = statSync(file).ino;
while (statSync(file).ino === before) await new Promise((r) => setTimeout(r, 5));
const slicedMs = performance.now() - t1;
const slicedStall = slicedStop();
if (JSON.parse(readFileSync(file, 'utf8')).nextMessage !== store.snapshot().nextMessage)
  throw new Error('the sliced save did not write the change');
saver.close();
rmSync(dir, { recursive: true, force: true });

out(
  `testbed state: ${entries.toLocaleString('en')} timeline entries, ${mb.toFixed(1)} MB of JSON, rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`,
);
out('save                     wall ms   longest stall ms');
out(`whole (before)           ${wholeMs.toFixed(0).padStart(7)}   ${wholeStall.toFixed(0).padStart(16)}`);
out(`sliced (testbed now)     ${slicedMs.toFixed(0).padStart(7)}   ${slicedStall.toFixed(0).padStart(16)}`);
