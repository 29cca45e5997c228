/**
 * A real full disk for tests: a small tmpfs mounted on a folder (needs root and mount), and
 * a filler file that takes every byte left, so the next write that needs a new page gets
 * ENOSPC from the kernel. `canMount()` says whether this machine allows it; tests that need
 * it skip with a notice, or fail under SILENTDROP_REQUIRE_ALL=1.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let probed: string | undefined | null = null;

/** Undefined when a tmpfs can be mounted here, else why not. */
export function whyNoTmpfs(): string | undefined {
  if (probed !== null) return probed;
  const dir = mkdtempSync(join(tmpdir(), 'sd-tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' });
    execFileSync('umount', [dir], { stdio: 'pipe' });
    probed = undefined;
  } catch (err) {
    const e = err as { stderr?: Buffer; message?: string };
    probed = `cannot mount a tmpfs (needs root and mount): ${(e.stderr?.toString() || e.message || String(err)).trim()}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return probed;
}

/** Mounts a tmpfs of `size` (e.g. `1m`) on `dir` (created if missing), owner-only. */
export function mountTmpfs(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
}

/** Unmounts (lazily, so a process still holding a file there does not block it). */
export function unmountTmpfs(dir: string): void {
  try {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  } catch {
    // not mounted
  }
}

/** Fills the file system of `dir` with `<dir>/<name>` until ENOSPC; returns its path and size. */
export async function fillUp(dir: string, name = 'filler'): Promise<{ path: string; bytes: number }> {
  const path = join(dir, name);
  const fh = await open(path, 'a', 0o600);
  const chunk = Buffer.alloc(16 * 1024, 0x66);
  let bytes = 0;
  try {
    for (let size = chunk.length; size >= 1; ) {
      try {
        bytes += (await fh.write(chunk, 0, size)).bytesWritten;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        size = Math.floor(size / 2);
      }
    }
    await fh.sync().catch(() => undefined);
  } finally {
    await fh.close();
  }
  return { path, bytes };
}

/** Gives the space back. */
export async function drain(path: string): Promise<void> {
  await rm(path, { force: true });
}
