/**
 * Locates the shared Citizen Lab data for tests and benchmarks (never copied into the repo):
 * $SILENTDROP_CITIZENLAB_DIR, else ../shared/data/citizenlab beside the repository.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type KeywordEntry, parseKeywordCsv } from './citizenlab.ts';

export const CITIZENLAB_DIR =
  process.env.SILENTDROP_CITIZENLAB_DIR ??
  resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../shared/data/citizenlab');

export const CITIZENLAB_LISTS = {
  crackdown709: 'wechat-709crackdown.csv',
  coronavirus: 'wechat-coronavirus.csv',
  liuXiaobo: 'wechat-liu-xiaobo.csv',
  oneAppTwoSystems: 'wechat-one-app-two-systems.csv',
} as const;

export type CitizenLabList = keyof typeof CITIZENLAB_LISTS;

export function citizenLabAvailable(): boolean {
  return existsSync(join(CITIZENLAB_DIR, CITIZENLAB_LISTS.crackdown709));
}

export function loadCitizenLab(list: CitizenLabList): KeywordEntry[] {
  return parseKeywordCsv(readFileSync(join(CITIZENLAB_DIR, CITIZENLAB_LISTS[list]), 'utf8'));
}
