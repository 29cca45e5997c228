/**
 * Loads the Citizen Lab lists for tests and benchmarks (read in place, never copied into
 * the repository): $SILENTDROP_CITIZENLAB_DIR, else ../shared/data/citizenlab/ beside it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type ImportedTermSet, importCitizenLabCsv } from './terms.ts';

export const CITIZENLAB_DIR = process.env.SILENTDROP_CITIZENLAB_DIR
  ? `${process.env.SILENTDROP_CITIZENLAB_DIR.replace(/\/$/, '')}/`
  : fileURLToPath(new URL('../../../shared/data/citizenlab/', import.meta.url));
export const CITIZENLAB_FILES = [
  'wechat-one-app-two-systems.csv',
  'wechat-709crackdown.csv',
  'wechat-liu-xiaobo.csv',
  'wechat-coronavirus.csv',
] as const;
export type CitizenLabFile = (typeof CITIZENLAB_FILES)[number];

export const citizenLabPresent = CITIZENLAB_FILES.every((f) => existsSync(CITIZENLAB_DIR + f));
export const requireAll = process.env.SILENTDROP_REQUIRE_ALL === '1';
/** Title suffix that makes a skip visible in the test report. */
export const skipNotice = citizenLabPresent
  ? ''
  : ` (SKIPPED: Citizen Lab data not found in ${CITIZENLAB_DIR})`;

export function readCitizenLab(file: CitizenLabFile): string {
  return readFileSync(CITIZENLAB_DIR + file, 'utf8');
}

export function loadCitizenLab(file: CitizenLabFile): ReturnType<typeof importCitizenLabCsv> {
  return importCitizenLabCsv(readCitizenLab(file), { file });
}

export function allCitizenLabSets(): ImportedTermSet[] {
  return CITIZENLAB_FILES.flatMap((f) => loadCitizenLab(f).termSets);
}

/** Rows per file as SOURCE.md's table states them. */
export function sourceMdRows(): Map<string, number> {
  const text = readFileSync(`${CITIZENLAB_DIR}SOURCE.md`, 'utf8');
  const rows = new Map<string, number>();
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const file = cells[1];
    const count = Number(cells[3]);
    if (file?.endsWith('.csv') && Number.isInteger(count)) rows.set(file, count);
  }
  return rows;
}
