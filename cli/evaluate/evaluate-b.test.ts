/** Rows 3–4 of the evaluate table (table.ts): whole local networks, about a minute each. */
import { describe, it } from 'vitest';
import { checkRow, ROWS } from './table.ts';

describe.concurrent('silentdrop evaluate on the testbed (b)', () => {
  for (const row of ROWS.slice(2, 4)) {
    it(`reports exactly the policy: ${row.id}`, () => checkRow(row), 260_000);
  }
});
