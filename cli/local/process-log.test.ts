import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { drain, fillUp, mountTmpfs, unmountTmpfs, whyNoTmpfs } from '../../probe/testing/tmpfs.ts';
import { ProcessLog } from './process-log.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const root = mkdtempSync(join(tmpdir(), 'sd-process-log-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('ProcessLog: the log file of a probe run as a separate process', () => {
  it('appends in order and closes after what was queued', async () => {
    const path = join(root, 'ordered.log');
    const log = new ProcessLog(path);
    for (let i = 0; i < 200; i++) log.write(`line ${i}\n`);
    await log.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(lines).toEqual(Array.from({ length: 200 }, (_, i) => `line ${i}`));
  });

  it('moves the file aside past maxBytes and goes on in a new one, keeping every line in order', async () => {
    const path = join(root, 'capped.log');
    const log = new ProcessLog(path, { maxBytes: 1000 });
    // 50 lines of 40 bytes: past 1000 bytes once, so one move aside; each write its own chunk
    for (let i = 0; i < 50; i++) log.write(`${`line ${i}`.padEnd(39, '.')}\n`);
    await log.close();
    const older = readFileSync(`${path}.1`, 'utf8');
    const newer = readFileSync(path, 'utf8');
    expect(older.length).toBeGreaterThan(1000);
    expect(older.length).toBeLessThanOrEqual(1040);
    expect(newer.length).toBeLessThanOrEqual(1040);
    const lines = `${older}${newer}`
      .trim()
      .split('\n')
      .map((l) => l.replace(/\.+$/, ''));
    expect(lines).toEqual(Array.from({ length: 50 }, (_, i) => `line ${i}`));
    // A second log on the same file continues from its size, not from zero.
    const again = new ProcessLog(path, { maxBytes: 1000 });
    for (let i = 50; i < 60; i++) again.write(`${`line ${i}`.padEnd(39, '.')}\n`);
    await again.close();
    expect(readFileSync(path, 'utf8').length).toBeLessThanOrEqual(1040);
    expect(readFileSync(`${path}.1`, 'utf8')).toMatch(/^line 2[56]/);
  });

  it('drops output while the file cannot be written, then resumes and says how much was dropped', async () => {
    const dir = join(root, 'later');
    const path = join(dir, 'probe.log');
    const log = new ProcessLog(path, { retryMs: 100 });
    log.write('lost 1\n'); // the folder does not exist yet: ENOENT
    await sleep(20);
    log.write('lost 2\n'); // within retryMs of the failure: dropped at once
    expect(log.dropped).toBe(14);
    mkdirSync(dir);
    await sleep(150);
    log.write('kept\n');
    await log.close();
    const text = readFileSync(path, 'utf8');
    expect(text).toBe(
      "\n[silentdrop local network: 14 bytes of this probe's output dropped: ENOENT]\nkept\n",
    );
    expect(text).not.toMatch(/lost/);
  });

  it('bounds what waits for the disk', async () => {
    const path = join(root, 'bounded.log');
    const log = new ProcessLog(path, { maxQueuedBytes: 1000 });
    for (let i = 0; i < 100; i++) log.write('x'.repeat(99) + '\n'); // 10,000 bytes at once
    const dropped = log.dropped;
    expect(dropped).toBe(9000);
    await log.close();
    const text = readFileSync(path, 'utf8');
    expect(text.startsWith(`${'x'.repeat(99)}\n`.repeat(10))).toBe(true);
    // The note at the close says what was dropped.
    expect(text.slice(1000)).toBe(
      "\n[silentdrop local network: 9000 bytes of this probe's output dropped: more output than the log could queue]\n",
    );
  });

  const why = whyNoTmpfs();
  const required = process.env.SILENTDROP_REQUIRE_ALL === '1';
  it.runIf(required)('can mount a tmpfs when SILENTDROP_REQUIRE_ALL=1', () => {
    expect(why, 'run as root on a machine where `mount -t tmpfs` works').toBeUndefined();
  });
  it.skipIf(why !== undefined)(
    `keeps logging after a real full disk (ENOSPC) once space returns${why ? ` (skipped: ${why})` : ''}`,
    async () => {
      const dir = join(root, 'tmpfs');
      mountTmpfs(dir, '64k');
      try {
        const path = join(dir, 'probe.log');
        const log = new ProcessLog(path, { retryMs: 100 });
        log.write('before\n');
        await sleep(20);
        const filler = await fillUp(dir);
        // More than the page the file already has: the kernel must find a new page.
        log.write('y'.repeat(8192));
        await sleep(50);
        expect(log.dropped).toBeGreaterThan(0);
        await drain(filler.path);
        await sleep(150);
        log.write('after\n');
        await log.close();
        const text = readFileSync(path, 'utf8');
        expect(text.startsWith('before\n')).toBe(true);
        expect(text).toMatch(/bytes of this probe's output dropped: ENOSPC\]\nafter\n$/);
      } finally {
        unmountTmpfs(dir);
        if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
