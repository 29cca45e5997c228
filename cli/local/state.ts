/**
 * `<data>/network.json` (0600): what a local network must remember between runs so it
 * continues instead of starting over — the test accounts (handles, regions, passwords)
 * and the campaign it created (id, and a fingerprint of what it was created from, so a
 * changed term list or cadence makes a new campaign instead of silently reusing the old).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalAccount } from './platform.ts';

export interface NetworkState {
  version: 1;
  accounts: LocalAccount[];
  campaign?: { id: string; fingerprint: string; name: string };
}

export const statePath = (dataDir: string) => join(dataDir, 'network.json');

export function readState(dataDir: string): NetworkState | undefined {
  const file = statePath(dataDir);
  if (!existsSync(file)) return undefined;
  let parsed: NetworkState;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as NetworkState;
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message} (move it away to start over)`);
  }
  if (parsed.version !== 1 || !Array.isArray(parsed.accounts)) {
    throw new Error(`${file} is not a local network state file (move it away to start over)`);
  }
  return parsed;
}

export function writeState(dataDir: string, state: NetworkState): void {
  const file = statePath(dataDir);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}
