import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase, PGLITE_LOCK_STALE_MS } from './open.ts';

const OPEN = resolve(import.meta.dirname, 'open.ts');

/** A second process that opens the folder, says `open`, and waits to be killed. */
function holder(dataDir: string, scriptDir: string): Promise<ChildProcess> {
  const script = join(scriptDir, 'holder.mts');
  writeFileSync(
    script,
    `import { openDatabase } from ${JSON.stringify(OPEN)};
    await openDatabase({ dataDir: ${JSON.stringify(dataDir)} });
    process.stdout.write('open\\n');
    setInterval(() => {}, 1000);\n`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((ok, fail) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('open')) ok(child);
    });
    child.on('exit', (c) => fail(new Error(`holder exited with ${c}`)));
  });
}

describe('one process per embedded database folder', () => {
  const dirs: string[] = [];
  const folder = () => {
    const d = mkdtempSync(join(tmpdir(), 'sd-lock-'));
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  // One folder for both cases: creating one costs PGlite an initdb (seconds, more under load).
  let dataDir = '';

  it('refuses a second opening of the same folder with a clear error, and opens it once the first closed', async () => {
    dataDir = folder();
    const first = await openDatabase({ dataDir });
    await expect(openDatabase({ dataDir, lockWaitMs: 0 })).rejects.toThrow(
      /data folder .*pglite is in use by another silentdrop process/,
    );
    await first.close();
    const again = await openDatabase({ dataDir, lockWaitMs: 0 });
    await again.close();
  }, 180_000);

  it('refuses while another process holds it, and takes over the lock a killed process left', async () => {
    const child = await holder(dataDir, folder());
    try {
      await expect(openDatabase({ dataDir, lockWaitMs: 0 })).rejects.toThrow(
        /in use by another silentdrop process/,
      );
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((r) => child.once('exit', r));
    // Its lock is no longer renewed: within the stale time (plus the wait) this process gets it.
    const started = Date.now();
    const db = await openDatabase({ dataDir, lockWaitMs: PGLITE_LOCK_STALE_MS + 5_000 });
    expect(Date.now() - started).toBeLessThan(PGLITE_LOCK_STALE_MS + 5_000);
    await db.migrate();
    await db.close();
  }, 180_000);
});
