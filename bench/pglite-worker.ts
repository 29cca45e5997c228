/**
 * What running PGlite in a worker thread costs per query (decision 013): the same
 * statements through drizzle on in-thread PGlite and on the worker, median and p95
 * round trip per query, and how long the event loop stays blocked meanwhile.
 *
 *   npm run bench:pglite-worker -- [--queries 500]
 */
import { parseArgs } from 'node:util';
import { BENCH_CASES, measurePglite } from '../collector/db/pglite-bench.ts';

const { values } = parseArgs({ options: { queries: { type: 'string', default: '500' } } });
const n = Number(values.queries);

const inThread = await measurePglite('main', n);
const worker = await measurePglite('worker', n);
const us = (ms: number) => `${(ms * 1000).toFixed(0)} µs`.padStart(10);
console.log(`PGlite round trips, ${n} each (median / p95); overhead = worker − in-thread median\n`);
console.log(
  `${'statement'.padEnd(28)}${'in-thread'.padStart(22)}${'worker'.padStart(22)}${'overhead'.padStart(12)}`,
);
for (const c of BENCH_CASES) {
  const a = inThread.out[c.name];
  const b = worker.out[c.name];
  if (!a || !b) continue;
  console.log(
    `${c.name.padEnd(28)}${us(a.median)} /${us(a.p95)}${us(b.median)} /${us(b.p95)}${us(b.median - a.median)}`,
  );
}
console.log(
  `\nopen (in memory): in-thread ${inThread.openMs.toFixed(0)} ms, worker ${worker.openMs.toFixed(0)} ms`,
);
console.log(
  `a ${inThread.slowMs.toFixed(0)} ms / ${worker.slowMs.toFixed(0)} ms statement: the longest gap between ` +
    `5 ms timer ticks is ${inThread.maxLoopDelayMs.toFixed(0)} ms in-thread, ${worker.maxLoopDelayMs.toFixed(0)} ms with the worker`,
);
