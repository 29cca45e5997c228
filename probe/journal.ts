/**
 * An append-only log of JSON records, one per line, each prefixed by a checksum:
 *
 *   <first 16 hex of sha256(json)> <json>\n
 *
 * Appends are fsync'd before they resolve (concurrent appends share one fsync).
 * On open, every line is verified; a torn trailing line (kill -9 mid-write) or a
 * corrupt line is copied to `<log>.corrupt.ndjson` for the operator and the log is
 * rewritten without it, so a crash never stops the probe. `rewrite()` compacts the
 * log atomically (temp file, fsync, rename): after a crash it is either the old log
 * or the new one. An append that fails (ENOSPC part-way through) is cut back to the last
 * whole record and rejected, so the log stays readable and the next append starts clean.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open, readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { appendDurably, atomicWriteFile } from './fsutil.ts';

export interface JournalRecord {
  /** Record kind; owners dispatch on it. */
  k: string;
  [field: string]: unknown;
}

type Op =
  | { kind: 'append'; data: string; resolve: () => void; reject: (e: unknown) => void }
  | { kind: 'rewrite'; records: JournalRecord[]; resolve: () => void; reject: (e: unknown) => void };

function checksum(json: string): string {
  return createHash('sha256').update(json).digest('hex').slice(0, 16);
}

export function encodeRecord(record: JournalRecord): string {
  const json = JSON.stringify(record);
  return `${checksum(json)} ${json}\n`;
}

/** Parses one line (without its newline); undefined when torn or corrupt. */
export function decodeRecord(line: string): JournalRecord | undefined {
  const sp = line.indexOf(' ');
  if (sp !== 16) return undefined;
  const json = line.slice(17);
  if (checksum(json) !== line.slice(0, 16)) return undefined;
  try {
    const value: unknown = JSON.parse(json);
    if (typeof value !== 'object' || value === null || typeof (value as { k?: unknown }).k !== 'string') {
      return undefined;
    }
    return value as JournalRecord;
  } catch {
    return undefined;
  }
}

export interface OpenedJournal {
  journal: Journal;
  records: JournalRecord[];
  /** How many torn/corrupt lines were set aside. */
  setAside: number;
}

export class Journal {
  private queue: Op[] = [];
  private busy = false;
  private closed = false;
  /** Records appended since the last rewrite (drives compaction). */
  appendedSinceRewrite = 0;

  private constructor(
    readonly path: string,
    private fh: FileHandle,
    private size: number,
  ) {}

  static async open(path: string, logger: Logger): Promise<OpenedJournal> {
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      buf = Buffer.alloc(0);
    }
    const text = buf.toString('utf8');
    const records: JournalRecord[] = [];
    const bad: { line: string; reason: string }[] = [];
    let start = 0;
    while (start < text.length) {
      const nl = text.indexOf('\n', start);
      if (nl === -1) {
        bad.push({ line: text.slice(start), reason: 'torn trailing record (no newline)' });
        break;
      }
      const line = text.slice(start, nl);
      start = nl + 1;
      if (line.length === 0) continue;
      const rec = decodeRecord(line);
      if (rec) records.push(rec);
      else bad.push({ line, reason: 'checksum or JSON mismatch' });
    }
    if (bad.length > 0) {
      const at = new Date().toISOString();
      const aside = bad.map(
        (b) => `${JSON.stringify({ set_aside_at: at, reason: b.reason, raw: b.line })}\n`,
      );
      await appendDurably(`${path}.corrupt.ndjson`, aside.join(''));
      await atomicWriteFile(path, records.map(encodeRecord).join(''));
      logger.warn(
        { journal: path, set_aside: bad.length, aside_file: `${path}.corrupt.ndjson` },
        'set aside torn or corrupt journal records',
      );
    }
    const fh = await open(path, 'a', 0o600);
    const { size } = await fh.stat();
    return { journal: new Journal(path, fh, size), records, setAside: bad.length };
  }

  /** Appends records; resolves once they are on disk (fsync'd). */
  append(records: JournalRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    const data = records.map(encodeRecord).join('');
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'append', data, resolve, reject });
      this.appendedSinceRewrite += records.length;
    });
  }

  /** Replaces the whole log with `records`, atomically. */
  rewrite(records: JournalRecord[]): Promise<void> {
    return new Promise((resolve, reject) => this.enqueue({ kind: 'rewrite', records, resolve, reject }));
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.enqueue({ kind: 'append', data: '', resolve, reject }));
    this.closed = true;
    await this.fh.close();
  }

  private enqueue(op: Op): void {
    if (this.closed) {
      op.reject(new Error(`journal ${this.path} is closed`));
      return;
    }
    this.queue.push(op);
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0]!;
        if (head.kind === 'rewrite') {
          this.queue.shift();
          await this.doRewrite(head);
          continue;
        }
        // Group every queued append into one write + one fsync.
        const group: Extract<Op, { kind: 'append' }>[] = [];
        while (this.queue[0]?.kind === 'append')
          group.push(this.queue.shift() as Extract<Op, { kind: 'append' }>);
        await this.doAppend(group);
      }
    } finally {
      this.busy = false;
    }
  }

  private async doAppend(group: Extract<Op, { kind: 'append' }>[]): Promise<void> {
    const data = group.map((o) => o.data).join('');
    try {
      if (data.length > 0) {
        const bytes = Buffer.from(data, 'utf8');
        // A write can be short (the disk filled up part-way): write the rest, which then
        // fails with ENOSPC and is cut off below, rather than leave a torn record behind.
        let off = 0;
        while (off < bytes.length)
          off += (await this.fh.write(bytes, off, bytes.length - off, null)).bytesWritten;
        await this.fh.datasync();
        this.size += bytes.length;
      }
      for (const o of group) o.resolve();
    } catch (err) {
      // Cut off a partial write so the next append does not merge into a torn line.
      await this.fh.truncate(this.size).catch(() => undefined);
      for (const o of group) o.reject(err);
    }
  }

  private async doRewrite(op: Extract<Op, { kind: 'rewrite' }>): Promise<void> {
    try {
      const data = op.records.map(encodeRecord).join('');
      await atomicWriteFile(this.path, data);
      const old = this.fh;
      this.fh = await open(this.path, 'a', 0o600);
      this.size = Buffer.byteLength(data, 'utf8');
      this.appendedSinceRewrite = 0;
      await old.close();
      op.resolve();
    } catch (err) {
      op.reject(err);
    }
  }
}
