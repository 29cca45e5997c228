/**
 * vitest global setup of the fault suite: a summary file for the run (cases append their
 * line, faults/support/suite.ts), printed as one table when every case is done.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Accounting, formatLine, TABLE_HEADER } from './accounting.ts';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'sd-faults-summary-'));
  const file = join(dir, 'cases.ndjson');
  process.env.SILENTDROP_FAULTS_SUMMARY = file;
  const startedAt = Date.now();
  return () => {
    let lines: (Accounting & { seconds: number })[] = [];
    try {
      lines = readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Accounting & { seconds: number });
    } catch {
      // no case ran
    }
    process.stdout.write(
      `\nfault suite: ${lines.length} case(s) in ${Math.round((Date.now() - startedAt) / 1000)} s\n` +
        `${[TABLE_HEADER, ...lines.map((a) => formatLine(a, a.seconds))].join('\n')}\n`,
    );
    rmSync(dir, { recursive: true, force: true });
  };
}
