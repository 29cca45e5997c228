/**
 * The evaluate table (table.ts): each row a whole local network run by `silentdrop evaluate`
 * until every verdict settles, one to four minutes each. These files run in their own phase of
 * `npm test` (vitest.evaluate.config.ts), after the other suites and two rows at a time, so
 * their pairs per second do not depend on what else the machine is running.
 */
import { describe, it } from 'vitest';
import { checkRow, ROW_TIMEOUT_MS, ROWS } from './table.ts';

describe('silentdrop evaluate on the testbed', { concurrent: true }, () => {
  for (const row of ROWS) {
    it(
      `reports exactly the policy: ${row.id}`,
      () => checkRow(row),
      (row.timeoutMs ?? ROW_TIMEOUT_MS) + 60_000,
    );
  }
});
