import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emptyState, readState, STATE_FILE, writeState } from './storage-state.ts';

describe('stored web session', () => {
  it('round-trips through a file only its owner can read', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'sd-state-')), 'nested');
    const state = { ...emptyState(), origins: { 'http://x': { 'testbed.token': 't' } } };
    writeState(dir, state);
    expect(statSync(join(dir, STATE_FILE)).mode & 0o777).toBe(0o600);
    expect(readState(dir)).toEqual(state);
  });

  it('starts empty when there is no file or it has another format', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sd-state-'));
    expect(readState(dir)).toEqual(emptyState());
    writeFileSync(join(dir, STATE_FILE), JSON.stringify({ format: 99, cookies: [] }));
    expect(readState(dir)).toEqual(emptyState());
  });
});
