/**
 * `npm run fuzz`: generated requests against a live collector and testbed over real HTTP.
 *
 *   npm run fuzz                          # 100,000 requests, a fresh seed (printed)
 *   npm run fuzz -- --seed 42 --count 5000 --concurrency 8
 *   DATABASE_URL=postgres://…/scratch npm run fuzz   # on a Postgres server (a scratch database!)
 *
 * The collector runs in this process on embedded PGlite in a temporary folder (or on
 * DATABASE_URL), listening on 127.0.0.1; its rate limits are configured high for the run
 * (the properties are about content, not volume). Prints the count, the statuses seen per
 * endpoint, the number of 5xx and of valid events not stored exactly once; exits 1 if
 * either is not zero.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { buildApp } from '../collector/app.ts';
import { openDatabase } from '../collector/db/open.ts';
import { createLogger } from '../collector/logger.ts';
import { TEST_ADMIN_TOKEN, TEST_HASH_KEY } from '../collector/test-support/probe.ts';
import { startTestbed } from '../testbed/index.ts';
import { check, collectorRequest, type FuzzRequest, testbedRequest } from './requests.ts';
import { httpSender } from './send.ts';
import { collectorContext, testbedContext } from './setup.ts';

const out = (s: string) => process.stdout.write(`${s}\n`);

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '100000' },
    seed: { type: 'string' },
    concurrency: { type: 'string', default: '8' },
  },
});
const count = Number(values.count);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const concurrency = Number(values.concurrency);
if (!Number.isInteger(count) || count < 1) throw new Error('--count must be a positive integer');
if (!Number.isInteger(seed)) throw new Error('--seed must be an integer');
if (!Number.isInteger(concurrency) || concurrency < 1)
  throw new Error('--concurrency must be a positive integer');

const dataDir = mkdtempSync(join(tmpdir(), 'sd-fuzz-'));
const databaseUrl = process.env.DATABASE_URL || undefined;
const database = await openDatabase({ databaseUrl, dataDir });
await database.migrate();
const app = await buildApp({
  db: database.db,
  config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
  logger: createLogger({ level: process.env.LOG_LEVEL ?? 'silent' }),
  rateLimit: { max: 10_000_000, timeWindowMs: 60_000 },
  probeRateLimit: { max: 10_000_000, timeWindowMs: 60_000 },
  adminRateLimit: { max: 10_000_000, timeWindowMs: 60_000 },
  // refused requests are most of what the fuzz sends: the per-address refusal limit too
  authFailureLimit: { max: 10_000_000, timeWindowMs: 60_000 },
});
const collectorUrl = await app.listen({ host: '127.0.0.1', port: 0 });
const testbed = await startTestbed({ policy: { regions: ['US', 'CN'] }, rateLimit: false, seed });

const ctx = await collectorContext(app, database.db);
const tctx = await testbedContext(testbed.url);
const arb: fc.Arbitrary<FuzzRequest> = fc.oneof(
  { weight: 6, arbitrary: collectorRequest(ctx) },
  { weight: 1, arbitrary: testbedRequest(tctx) },
);
const transport = { resentAfterClosedConnection: 0 };
const send = {
  collector: httpSender(collectorUrl, 30_000, transport),
  testbed: httpSender(testbed.url, 30_000, transport),
};

out(`fuzz: seed ${seed}, ${count} requests, concurrency ${concurrency}`);
out(
  `fuzz: collector ${collectorUrl} (${database.driver}${databaseUrl ? '' : ` in ${dataDir}`}), testbed ${testbed.url}`,
);

const statuses = new Map<string, Map<number, number>>();
const problems: string[] = [];
let sent = 0;
let fiveXx = 0;
let lost = 0;
let transportErrors = 0;
const started = Date.now();

/** Requests in chunks of 100 (chunk i from seed + i), so memory stays flat over long runs. */
function* requests(): Generator<FuzzRequest> {
  for (let done = 0, chunk = 0; done < count; chunk++) {
    const n = Math.min(100, count - done);
    yield* fc.sample(arb, { seed: seed + chunk, numRuns: n });
    done += n;
  }
}
const queue = requests();

async function worker(): Promise<void> {
  for (let next = queue.next(); !next.done; next = queue.next()) {
    const r = next.value;
    const built = r.build();
    let answer: { status: number; body: string };
    try {
      answer = await send[built.target](built);
    } catch (err) {
      transportErrors++;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      problems.push(
        `${r.endpoint}: no answer (${(err as Error).message}${cause ? `: ${cause.code ?? ''} ${cause.message ?? ''}` : ''}) ` +
          `to ${built.method} ${built.url.slice(0, 80)} with headers ${JSON.stringify(Object.keys(built.headers))} ` +
          `and ${built.body?.length ?? 0} body chars`,
      );
      continue;
    }
    const answered = ++sent;
    const byStatus = statuses.get(r.endpoint) ?? new Map<number, number>();
    byStatus.set(answer.status, (byStatus.get(answer.status) ?? 0) + 1);
    statuses.set(r.endpoint, byStatus);
    const found = await check(database.db, built, answer);
    if (answer.status >= 500) fiveXx++;
    if (found.some((p) => p.startsWith('valid events'))) lost++;
    for (const p of found) if (problems.length < 50) problems.push(`${r.endpoint}: ${p}`);
    if (answered % (count >= 20_000 ? 10_000 : 500) === 0) {
      process.stderr.write(
        `fuzz: ${answered} sent, ${fiveXx} 5xx, ${Math.round((Date.now() - started) / 1000)} s\n`,
      );
    }
  }
}

try {
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
} finally {
  await testbed.close();
  await app.close();
  await database.close();
  if (!databaseUrl) rmSync(dataDir, { recursive: true, force: true });
}

const total = new Map<number, number>();
for (const byStatus of statuses.values()) {
  for (const [s, n] of byStatus) total.set(s, (total.get(s) ?? 0) + n);
}
const fmt = (m: Map<number, number>) =>
  [...m]
    .sort((a, b) => a[0] - b[0])
    .map(([s, n]) => `${s}×${n}`)
    .join(' ');
out('');
for (const [endpoint, byStatus] of [...statuses].sort((a, b) => a[0].localeCompare(b[0]))) {
  out(`  ${endpoint.padEnd(44)} ${fmt(byStatus)}`);
}
out('');
if (problems.length > 0) {
  out(`first ${problems.length} problems:`);
  for (const p of problems) out(`  ${p}`);
  out('');
}
out(`requests: ${sent} in ${Math.round((Date.now() - started) / 1000)} s (seed ${seed})`);
out(`statuses: ${fmt(total)}`);
out(`5xx: ${fiveXx}`);
out(`batches with a valid event not stored exactly once: ${lost}`);
if (transport.resentAfterClosedConnection > 0) {
  out(
    `requests sent again after the server closed a kept-alive connection: ${transport.resentAfterClosedConnection}`,
  );
}
if (transportErrors > 0) out(`requests without an answer: ${transportErrors}`);
process.exitCode = fiveXx > 0 || lost > 0 || transportErrors > 0 ? 1 : 0;
