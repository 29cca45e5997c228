/**
 * Whether the probe's data folder takes writes (docs/decisions/020-disk-full-and-clock-steps.md).
 *
 * A journal write refused with ENOSPC, EDQUOT or EROFS (no space, quota, read-only) turns
 * the state `full`. While full:
 * - no new canary is taken: a hand-out that cannot be journaled is held in memory and taken
 *   once space returns (the collector also hands out nothing to a probe that reports `full`);
 * - no canary is sent: an account waits before its `sending` record, so nothing leaves
 *   without a journal record;
 * - an event that cannot be journaled (a send already made, a receipt) is held in memory and
 *   journaled first when space returns; it is uploaded only once journaled;
 * - what is journaled stays as it was: a failed append is cut off (journal.ts).
 * Every `retryMs` the gate tries to write and fsync a `CHECK_BYTES` file in the folder; when
 * that works it calls `recover` (which journals what was held) and, if that works too, the
 * state is `ok` again. A small append that happens to succeed while full (room left in the
 * journal's last page) does not end the state: only the check does, so it does not flap.
 */
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ProbeStorage } from '../protocol/index.ts';

/** Error codes that mean "the folder takes no more writes", not "this write was wrong". */
export const STORAGE_FULL_CODES = ['ENOSPC', 'EDQUOT', 'EROFS'] as const;
export type StorageFullCode = (typeof STORAGE_FULL_CODES)[number];

export function storageFullCode(err: unknown): StorageFullCode | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return STORAGE_FULL_CODES.find((c) => c === code);
}

/** How much must be writable before the probe takes new work again. */
export const CHECK_BYTES = 64 * 1024;

/** What the check-in and status.json say (protocol/checkin.ts ProbeStorage). */
export type StorageReport = ProbeStorage;

export interface StorageGateOptions {
  dir: string;
  logger: Logger;
  /** Between two checks while full (default 5 s). */
  retryMs?: number;
  /** Journals what was held while full; throws when it cannot. */
  recover?: () => Promise<void>;
  /** Told when the state changes (the agent rewrites its status file). */
  onChange?: (report: StorageReport) => void;
}

export class StorageGate {
  private state: 'ok' | 'full' = 'ok';
  private since?: number;
  private code?: StorageFullCode;
  private timer?: NodeJS.Timeout;
  private waiters: (() => void)[] = [];
  private stopped = false;
  private checking = false;
  recover?: () => Promise<void>;
  onChange?: (report: StorageReport) => void;
  /** Times the folder was found full (for tests and logs). */
  fullCount = 0;

  constructor(private readonly opts: StorageGateOptions) {
    this.recover = opts.recover;
    this.onChange = opts.onChange;
  }

  get full(): boolean {
    return this.state === 'full';
  }

  report(): StorageReport {
    if (this.state === 'ok') return { state: 'ok' };
    return {
      state: 'full',
      ...(this.since !== undefined ? { since: new Date(this.since).toISOString() } : {}),
      ...(this.code ? { code: this.code } : {}),
    };
  }

  /**
   * A write failed: true (and the state is `full`) when it failed for lack of space, quota
   * or a read-only folder; false for any other error (the caller handles it as before).
   */
  noteFailure(err: unknown): boolean {
    const code = storageFullCode(err);
    if (!code) return false;
    if (this.state === 'full') return true;
    this.state = 'full';
    this.since = Date.now();
    this.code = code;
    this.fullCount += 1;
    this.opts.logger.error(
      { code, dir: this.opts.dir, err },
      'data folder takes no more writes; no new canaries until space returns',
    );
    this.schedule();
    this.onChange?.(this.report());
    return true;
  }

  /** Resolves at once when writable, else when space returned (or the gate stopped). */
  whenWritable(): Promise<void> {
    if (this.state === 'ok' || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Checks now (the timer does this every `retryMs` while full). */
  async check(): Promise<boolean> {
    if (this.state === 'ok') return true;
    if (this.checking || this.stopped) return false;
    this.checking = true;
    try {
      await writeCheckFile(this.opts.dir);
      await this.recover?.();
    } catch (err) {
      if (!storageFullCode(err)) this.opts.logger.warn({ err }, 'data folder check failed');
      return false;
    } finally {
      this.checking = false;
    }
    const wasFullFor = Date.now() - (this.since ?? Date.now());
    this.state = 'ok';
    this.since = undefined;
    this.code = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.opts.logger.info({ full_for_ms: wasFullFor, dir: this.opts.dir }, 'data folder takes writes again');
    for (const w of this.waiters.splice(0)) w();
    this.onChange?.(this.report());
    return true;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const w of this.waiters.splice(0)) w();
  }

  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      if (!(await this.check()) && this.state === 'full') this.schedule();
    }, this.opts.retryMs ?? 5000);
    this.timer.unref();
  }
}

/** Writes and fsyncs CHECK_BYTES in `dir`, then removes the file. */
async function writeCheckFile(dir: string): Promise<void> {
  const path = join(dir, '.space-check');
  try {
    const fh = await open(path, 'w', 0o600);
    try {
      const buf = Buffer.alloc(CHECK_BYTES, 0x2e);
      let off = 0;
      while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
      await fh.sync();
    } finally {
      await fh.close();
    }
  } finally {
    await rm(path, { force: true });
  }
}
