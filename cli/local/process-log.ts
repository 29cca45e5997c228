/**
 * The log file of a probe the local network runs as a separate process (`probe.log` in the
 * probe's folder): its stdout and stderr, appended in order.
 *
 * The folder is the probe's data folder, so it fills up when the probe's does (the disk-full
 * fault case, or a real full disk under `npm start`). A write the disk refuses must stop
 * neither the probe nor the network, and must not end the log for good: while writes fail,
 * output is dropped (counted); after `retryMs` the next output tries again, and the first
 * write that works is preceded by a line saying how many bytes were dropped and why. Output
 * waiting for the disk is bounded (`maxQueuedBytes`); beyond it, it is dropped the same way.
 * Past `maxBytes` the file is moved aside to `probe.log.1` and a new one starts (log-files.ts).
 */
import { type FileHandle, open } from 'node:fs/promises';
import { LOG_FILE_MAX_BYTES, moveAside } from './log-files.ts';

export interface ProcessLogOptions {
  /** After a failed write, how long output is dropped before the next try (default 5 s). */
  retryMs?: number;
  /** Output queued for the disk beyond this is dropped (default 1 MiB). */
  maxQueuedBytes?: number;
  /** Size at which the file is moved aside (default log-files.ts LOG_FILE_MAX_BYTES). */
  maxBytes?: number;
}

export class ProcessLog {
  private fh?: FileHandle;
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  /** Dropped by write() since the last chunk it queued: noted before that chunk's successor. */
  private droppedHere = 0;
  /** Dropped in the queue's order and not yet noted in the file. */
  private carried = 0;
  private lastError?: string;
  private failedUntil = 0;
  private closed = false;
  private readonly retryMs: number;
  private readonly maxQueuedBytes: number;
  private readonly maxBytes: number;
  /** Size of the open file (from when it was opened, plus what was written since). */
  private size = 0;

  constructor(
    readonly path: string,
    o: ProcessLogOptions = {},
  ) {
    this.retryMs = o.retryMs ?? 5000;
    this.maxQueuedBytes = o.maxQueuedBytes ?? 1024 * 1024;
    this.maxBytes = o.maxBytes ?? LOG_FILE_MAX_BYTES;
  }

  /** Bytes dropped and not yet noted in the file. */
  get dropped(): number {
    return this.carried + this.droppedHere;
  }

  write(chunk: Buffer | string): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (this.closed || Date.now() < this.failedUntil) {
      this.droppedHere += buf.length;
      return;
    }
    if (this.queued + buf.length > this.maxQueuedBytes) {
      this.droppedHere += buf.length;
      this.lastError = 'more output than the log could queue';
      return;
    }
    const before = this.droppedHere;
    this.droppedHere = 0;
    this.queued += buf.length;
    this.chain = this.chain
      .then(() => this.writeNow(buf, before))
      .finally(() => {
        this.queued -= buf.length;
      });
  }

  /** Waits for what is queued, notes what was dropped since (if the disk takes it), closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    if (this.dropped > 0) {
      this.failedUntil = 0;
      const before = this.droppedHere;
      this.droppedHere = 0;
      await this.writeNow(Buffer.alloc(0), before);
    }
    await this.fh?.close().catch(() => undefined);
    this.fh = undefined;
  }

  private async writeNow(buf: Buffer, droppedBefore: number): Promise<void> {
    this.carried += droppedBefore;
    if (Date.now() < this.failedUntil) {
      this.carried += buf.length;
      return;
    }
    try {
      if (this.fh && this.size > this.maxBytes) {
        const full = this.fh;
        this.fh = undefined;
        await full.close().catch(() => undefined);
        moveAside(this.path);
      }
      if (!this.fh) {
        this.fh = await open(this.path, 'a', 0o600);
        this.size = (await this.fh.stat()).size;
      }
      if (this.carried > 0) {
        const note = `\n[silentdrop local network: ${this.carried} bytes of this probe's output dropped: ${this.lastError ?? 'the disk refused them'}]\n`;
        await this.writeAll(Buffer.from(note), false);
        this.carried = 0;
      }
      await this.writeAll(buf, true);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      this.lastError = e.code ?? e.message;
      this.carried += (err as { unwritten?: number }).unwritten ?? buf.length;
      this.failedUntil = Date.now() + this.retryMs;
      // A full disk leaves the handle usable; anything else (a removed folder) opens afresh.
      if (e.code !== 'ENOSPC' && e.code !== 'EDQUOT') {
        const fh = this.fh;
        this.fh = undefined;
        await fh?.close().catch(() => undefined);
      }
    }
  }

  /**
   * A write the disk cut short throws; for output (not the note) it says how much of the
   * chunk the disk did not take.
   */
  private async writeAll(buf: Buffer, output: boolean): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new Error('the log file is not open');
    if (buf.length === 0) return;
    const { bytesWritten } = await fh.write(buf, 0, buf.length);
    this.size += bytesWritten;
    if (bytesWritten < buf.length)
      throw Object.assign(new Error('short write'), {
        code: 'ENOSPC' as const,
        ...(output ? { unwritten: buf.length - bytesWritten } : {}),
      });
  }
}
