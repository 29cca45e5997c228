import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { cappedLogDestination } from './log-files.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const root = mkdtempSync(join(tmpdir(), 'sd-log-files-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the local network log files', () => {
  it('moves a log past maxBytes aside and goes on in a new file, losing no line', async () => {
    mkdirSync(join(root, 'logs'));
    const path = join(root, 'logs', 'collector.log');
    const dest = cappedLogDestination(path, { maxBytes: 4_000, checkEveryMs: 20 });
    await new Promise((resolve) => dest.once('ready', resolve));
    const log = pino({ base: null, timestamp: false }, dest);
    let written = 0;
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 25; i++) log.info({ n: written++ }, 'a request');
      await sleep(60);
    }
    // The size is looked at every 20 ms: wait for the look that moves the file (a loaded machine).
    for (let i = 0; i < 250 && !existsSync(`${path}.1`); i++) await sleep(20);
    await new Promise<void>((resolve) => {
      dest.once('close', () => resolve());
      dest.end();
    });
    expect(existsSync(`${path}.1`)).toBe(true);
    // The newest lines are in the live file; it and the previous one hold at most about a check's worth past the cap.
    const newer = readFileSync(path, 'utf8').trim().split('\n');
    const older = readFileSync(`${path}.1`, 'utf8').trim().split('\n');
    expect(readFileSync(path).length).toBeLessThan(8_000);
    const ns = [...older, ...newer].map((l) => (JSON.parse(l) as { n: number }).n);
    // the oldest lines went with the file replaced before; the rest are in order, none missing
    expect(ns).toEqual(Array.from({ length: ns.length }, (_, i) => written - ns.length + i));
    expect(ns.at(-1)).toBe(written - 1);
  });
});
