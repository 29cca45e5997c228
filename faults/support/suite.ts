/**
 * How a fault case is declared and reported: `describeFault` runs the case when the
 * Postgres binaries it needs are there, skips it with a visible notice when not, and fails
 * under SILENTDROP_REQUIRE_ALL=1 (CI); `report` prints the case's line of the table and
 * appends it to the run's summary (printed at the end by faults/support/summary.ts).
 */
import { appendFileSync } from 'node:fs';
import { describe, it } from 'vitest';
import { type Accounting, formatLine, TABLE_HEADER } from './accounting.ts';
import { findPostgres } from './postgres.ts';

const found = await findPostgres();
const problem = typeof found === 'string' ? found : undefined;

/**
 * SILENTDROP_FAULTS_LONG=1 (`npm run test:faults -- --long`, scripts/test-faults.mjs): the
 * long variant of a case (a 5-minute cut).
 */
export const LONG = process.env.SILENTDROP_FAULTS_LONG === '1';

export function describeFault(name: string, body: () => void): void {
  if (!problem) {
    describe(name, body);
    return;
  }
  if (process.env.SILENTDROP_REQUIRE_ALL === '1') {
    describe(name, () => {
      it('needs a Postgres server of its own (SILENTDROP_REQUIRE_ALL=1)', () => {
        throw new Error(`cannot run an owned Postgres server: ${problem}`);
      });
    });
  } else {
    process.stderr.write(`fault case "${name}" skipped: ${problem}\n`);
    describe.skip(`${name} [skipped: ${problem}]`, () => {
      it('skipped', () => {});
    });
  }
}

export function report(a: Accounting, startedAt: number): void {
  const seconds = Math.round((Date.now() - startedAt) / 1000);
  process.stdout.write(`${TABLE_HEADER}\n${formatLine(a, seconds)}\n`);
  const file = process.env.SILENTDROP_FAULTS_SUMMARY;
  if (file) appendFileSync(file, `${JSON.stringify({ ...a, seconds })}\n`);
}
