/** Rows 3–4 of the evaluate table (table.ts): whole local networks, about a minute each. */
import { describe, it } from 'vitest';
import { checkRow, ROWS } from './table.ts';

describe.concurrent('silentdrop evaluate on the testbed (b)', () => {
  for (const row of ROWS.slice(2, 4)) {
    // Known open problem (see docs/decisions/007): in the combination row two of 18 scopes end
    // `inconclusive` after the sequential design's last look and isolation runs may not finish
    // within the deadline; run it with SILENTDROP_SLOW=1 while that is being fixed.
    const known = row.id.startsWith('combination') && process.env.SILENTDROP_SLOW !== '1';
    it.skipIf(known)(`reports exactly the policy: ${row.id}`, () => checkRow(row), 260_000);
  }
});
