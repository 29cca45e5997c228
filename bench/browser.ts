/**
 * Browser adapter bench: seconds per canary (send in the sender's web client until
 * "sent", then until the recipient's in-page observer reports it) over a real testbed,
 * and peak memory of this probe process and of Chromium (all its processes, from /proc).
 *
 *   npx tsx bench/browser.ts [--canaries N] [--human]
 *
 * `--human` uses the adapter's default human-like pacing (slow on purpose); without it
 * pacing is near zero, so the figure is the engine's own cost.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { engineForTests } from '../probe/adapters/browser/engine.ts';
import { inGroups, pssKb, selfRssKb } from '../probe/adapters/browser/procs.ts';
import {
  account,
  chromiumOrUndefined,
  createGroup,
  nonce,
  signUp,
  tempStateDir,
  Watched,
} from '../probe/adapters/browser/test-support.ts';
import { startTestbed } from '../testbed/index.ts';

const { values } = parseArgs({
  options: { canaries: { type: 'string', default: '20' }, human: { type: 'boolean', default: false } },
});
const canaries = Number(values.canaries);
const human = values.human ?? false;

if (!(await chromiumOrUndefined())) {
  console.error('bench:browser: no Chromium found (set SILENTDROP_CHROMIUM)');
  process.exit(2);
}

// /proc is read sparingly (smaps_rollup is costly) so the bench does not slow what it measures.
const peak = { self: 0, chromiumRss: 0, chromiumPss: 0 };
let ticks = 0;
const sample = () => {
  peak.self = Math.max(peak.self, selfRssKb());
  const procs = inGroups(engineForTests().launchedPids);
  peak.chromiumRss = Math.max(
    peak.chromiumRss,
    procs.reduce((s, p) => s + p.rssKb, 0),
  );
  if (ticks++ % 4 === 0) {
    peak.chromiumPss = Math.max(
      peak.chromiumPss,
      procs.reduce((s, p) => s + pssKb(p.pid), 0),
    );
  }
};
const sampler = setInterval(sample, 500);

const tb = await startTestbed({ policy: { regions: ['CN', 'US'] }, port: 0, rateLimit: false });
const token = await signUp(tb.url, 'sender', 'US');
await signUp(tb.url, 'receiver', 'CN');
const group = await createGroup(tb.url, token, 'bench', ['receiver']);
const pacing = human
  ? { pacing: undefined }
  : { pacing: { actionDelayMs: [0, 5], keyDelayMs: [0, 2], minSendIntervalMs: 0 } };
const sender = await new Watched(
  account(tb.url, 'sender', 'US', { settings: pacing }),
  tempStateDir('bench-sender'),
).start();
const receiver = await new Watched(
  account(tb.url, 'receiver', 'CN', { settings: pacing }),
  tempStateDir('bench-receiver'),
).start();

const total: number[] = [];
const sendOnly: number[] = [];
for (let i = 0; i < canaries; i++) {
  const n = nonce();
  const t0 = performance.now();
  const r = await sender.adapter.send(group, `bench canary ${i} about the weather ${n}`);
  const t1 = performance.now();
  if (r.status !== 'sent') throw new Error(`canary ${i} was ${r.status}`);
  await receiver.waitFor(n, 30_000);
  const t2 = performance.now();
  sendOnly.push((t1 - t0) / 1000);
  total.push((t2 - t0) / 1000);
}
await sleep(200);
ticks = 0;
sample();
clearInterval(sampler);
await sender.adapter.close();
await receiver.adapter.close();
await tb.close();

const q = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? 0;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const mb = (kb: number) => (kb / 1024).toFixed(0);
console.log(
  `browser adapter bench: ${canaries} canaries, ${human ? 'human' : 'fast'} pacing, 2 accounts, 1 Chromium`,
);
console.log(
  `seconds per canary (send + observe): mean ${mean(total).toFixed(3)}  p50 ${q(total, 0.5).toFixed(3)}  p95 ${q(total, 0.95).toFixed(3)}`,
);
console.log(
  `  send until "sent": mean ${mean(sendOnly).toFixed(3)} (the recipient usually sees it before the sender's "sent")`,
);
console.log(`peak RSS probe process: ${mb(peak.self)} MB`);
console.log(
  `peak Chromium (all processes): RSS sum ${mb(peak.chromiumRss)} MB, PSS ${mb(peak.chromiumPss)} MB (PSS splits shared pages)`,
);
