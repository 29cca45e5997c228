/**
 * The durable outbox. Every event is appended to the probe's journal (fsync'd, with a
 * checksum per record) before anyone may upload it, and is forgotten only after the
 * collector answered `stored` or `duplicate` for its event_id (an `ack` record).
 *
 * Crash guarantees (kill -9 at any instant):
 * - an event whose add() resolved is on disk and will be uploaded after a restart;
 * - an event the collector stored whose ack was not yet written is uploaded again and
 *   answered `duplicate` (ingest is idempotent by event_id), so nothing is stored twice;
 * - a torn trailing record is set aside by the journal, never crashes the probe.
 *
 * Uploads go in batches (≤ LIMITS.eventsPerBatch events and ≤ the body limit), retried
 * with exponential backoff and jitter. Events the collector `refused` are appended to
 * `dead-letter.ndjson` (one JSON object per line, for the operator) and acknowledged,
 * so they never hold back the rest.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { type EventResult, LIMITS, type ProbeEvent } from '../protocol/index.ts';
import { appendDurably } from './fsutil.ts';
import type { JournalRecord } from './journal.ts';

export type UploadFn = (events: ProbeEvent[]) => Promise<EventResult[]>;

export interface OutboxOptions {
  upload: UploadFn;
  logger: Logger;
  deadLetterPath: string;
  /** Exponential backoff between failed uploads. */
  backoff?: { baseMs: number; maxMs: number };
  maxBatch?: number;
  maxBodyBytes?: number;
  random?: () => number;
}

interface Pending {
  ev: ProbeEvent;
  bytes: number;
  /** false until its journal record is fsync'd: only durable events are uploaded. */
  durable: boolean;
}

export interface DeadLetter {
  dead_lettered_at: string;
  reason: string;
  event: ProbeEvent;
}

export class Outbox {
  private readonly pending = new Map<string, Pending>();
  private readonly deadIds = new Set<string>();
  private readonly backoff: { baseMs: number; maxMs: number };
  private readonly maxBatch: number;
  private readonly maxBodyBytes: number;
  private readonly random: () => number;
  private batchLimit: number;
  private running?: Promise<void>;
  private stopping = false;
  private wakeLoop?: () => void;
  private loopIdle = false;
  private idleWaiters: (() => void)[] = [];
  /** Consecutive failed uploads (0 when the last one succeeded). */
  failures = 0;
  lastError?: string;
  /** Told about every event added (the canary ledger listens). */
  onEventAdded?: (ev: ProbeEvent) => void;
  /** Called after acknowledged events were removed (the store compacts). */
  onAcked?: () => void;

  constructor(
    private readonly append: (records: JournalRecord[]) => Promise<void>,
    private readonly opts: OutboxOptions,
  ) {
    this.backoff = opts.backoff ?? { baseMs: 1000, maxMs: 5 * 60_000 };
    this.maxBatch = Math.min(opts.maxBatch ?? LIMITS.eventsPerBatch, LIMITS.eventsPerBatch);
    this.maxBodyBytes = opts.maxBodyBytes ?? LIMITS.probeBodyBytes - 4096;
    this.random = opts.random ?? Math.random;
    this.batchLimit = this.maxBatch;
  }

  /** Loads ids already in the dead-letter file (so a re-refused event is not written twice). */
  async loadDeadLetters(): Promise<void> {
    let text = '';
    try {
      text = await readFile(this.opts.deadLetterPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const id = (JSON.parse(line) as { event?: { event_id?: unknown } }).event?.event_id;
        if (typeof id === 'string') this.deadIds.add(id);
      } catch {
        // a torn last line of the operator's file: ignore
      }
    }
  }

  /** Replays one journal record (called by the store on open). */
  replay(rec: JournalRecord): void {
    if (rec.k === 'ev') {
      const ev = rec.ev as ProbeEvent;
      this.pending.set(ev.event_id, { ev, bytes: Buffer.byteLength(JSON.stringify(ev)), durable: true });
    } else if (rec.k === 'ack') {
      for (const id of rec.ids as string[]) this.pending.delete(id);
    }
  }

  /** Stores an event durably; resolves once it is on disk. Adding a pending event_id again is a no-op. */
  async add(ev: ProbeEvent): Promise<void> {
    if (this.pending.has(ev.event_id)) return;
    const entry: Pending = { ev, bytes: Buffer.byteLength(JSON.stringify(ev)), durable: false };
    this.pending.set(ev.event_id, entry);
    this.onEventAdded?.(ev);
    try {
      await this.append([{ k: 'ev', ev }]);
    } catch (err) {
      this.pending.delete(ev.event_id);
      throw err;
    }
    entry.durable = true;
    // Wake an idle uploader; a backoff wait is not cut short by new events.
    if (this.loopIdle) this.wakeLoop?.();
  }

  has(eventId: string): boolean {
    return this.pending.has(eventId);
  }

  backlog(): number {
    return this.pending.size;
  }

  deadLetters(): number {
    return this.deadIds.size;
  }

  snapshot(): JournalRecord[] {
    return [...this.pending.values()].map((p) => ({ k: 'ev', ev: p.ev }));
  }

  /** Starts the background uploader. */
  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.running = this.loop().catch((err) => {
      this.opts.logger.error({ err }, 'outbox uploader stopped unexpectedly');
    });
  }

  /**
   * Tries to empty the outbox now (cutting short a backoff wait); resolves true when
   * empty, false when `timeoutMs` passed first. Starts the uploader if needed.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    this.start();
    if (this.uploadable() === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    this.wakeLoop?.();
    const done = await Promise.race([idle, timeout]);
    clearTimeout(timer);
    return done;
  }

  /** Stops the uploader after its current request. Pending events stay on disk. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeLoop?.();
    await this.running;
    this.running = undefined;
  }

  private uploadable(): number {
    let n = 0;
    for (const p of this.pending.values()) if (p.durable) n++;
    return n;
  }

  private takeBatch(): ProbeEvent[] {
    const out: ProbeEvent[] = [];
    let bytes = 0;
    for (const p of this.pending.values()) {
      if (!p.durable) continue;
      if (out.length >= this.batchLimit) break;
      if (out.length > 0 && bytes + p.bytes + 1 > this.maxBodyBytes) break;
      out.push(p.ev);
      bytes += p.bytes + 1;
    }
    return out;
  }

  private async loop(): Promise<void> {
    const log = this.opts.logger;
    while (!this.stopping) {
      const batch = this.takeBatch();
      if (batch.length === 0) {
        for (const w of this.idleWaiters.splice(0)) w();
        this.loopIdle = true;
        await this.sleep(Number.POSITIVE_INFINITY);
        this.loopIdle = false;
        continue;
      }
      try {
        const results = await this.opts.upload(batch);
        // The collector answered: the failure streak ends here, before the acks are
        // written (the backlog can reach 0 while applyResults is still running).
        if (this.failures > 0) log.info({ after_failures: this.failures }, 'outbox upload recovered');
        this.failures = 0;
        this.lastError = undefined;
        await this.applyResults(batch, results);
        this.batchLimit = Math.min(this.maxBatch, this.batchLimit * 2);
      } catch (err) {
        if ((err as { refused?: unknown }).refused === true) {
          // The collector refused the request as a whole (malformed or too large):
          // narrow it down until the one event it cannot take is dead-lettered.
          if (batch.length > 1) {
            this.batchLimit = Math.max(1, Math.floor(batch.length / 2));
            log.warn(
              { err, batch: batch.length, next: this.batchLimit },
              'collector refused a batch; splitting it',
            );
          } else if (batch[0]) {
            await this.deadLetter([{ ev: batch[0], reason: (err as Error).message }]);
          }
          continue;
        }
        this.failures += 1;
        this.lastError = (err as Error).message;
        const delay = this.backoffMs(this.failures);
        log.warn({ err, backlog: this.pending.size, retry_in_ms: Math.round(delay) }, 'outbox upload failed');
        await this.sleep(delay);
      }
    }
  }

  /** Equal-jitter exponential backoff: between half and all of base·2^(n-1), capped. */
  backoffMs(attempt: number): number {
    const cap = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** Math.min(attempt - 1, 30));
    return cap / 2 + (this.random() * cap) / 2;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
      const self = this;
      function done(): void {
        clearTimeout(timer);
        if (self.wakeLoop === done) self.wakeLoop = undefined;
        resolve();
      }
      this.wakeLoop = done;
    });
  }

  private async applyResults(batch: ProbeEvent[], results: EventResult[]): Promise<void> {
    const acked: string[] = [];
    const refused: { ev: ProbeEvent; reason: string }[] = [];
    const answered = new Set<number>();
    for (const r of results) {
      const ev = batch[r.index];
      if (!ev || answered.has(r.index)) continue;
      if (r.event_id !== undefined && r.event_id !== ev.event_id) {
        this.opts.logger.warn(
          { index: r.index, event_id: r.event_id },
          'collector result names another event; ignored',
        );
        continue;
      }
      answered.add(r.index);
      if (r.status === 'stored' || r.status === 'duplicate' || r.status === 'ignored')
        acked.push(ev.event_id);
      else refused.push({ ev, reason: r.reason ?? 'refused without a reason' });
    }
    if (answered.size < batch.length) {
      this.opts.logger.warn(
        { batch: batch.length, answered: answered.size },
        'collector did not answer for every event; the rest stay in the outbox',
      );
    }
    if (refused.length > 0) await this.deadLetter(refused);
    if (acked.length > 0) await this.ack(acked);
  }

  private async deadLetter(items: { ev: ProbeEvent; reason: string }[]): Promise<void> {
    const at = new Date().toISOString();
    const fresh = items.filter((i) => !this.deadIds.has(i.ev.event_id));
    if (fresh.length > 0) {
      const lines = fresh.map((i) => {
        const d: DeadLetter = { dead_lettered_at: at, reason: i.reason, event: i.ev };
        return `${JSON.stringify(d)}\n`;
      });
      await appendDurably(this.opts.deadLetterPath, lines.join(''));
      for (const i of fresh) {
        this.deadIds.add(i.ev.event_id);
        this.opts.logger.error(
          { event_id: i.ev.event_id, type: i.ev.type, reason: i.reason, file: this.opts.deadLetterPath },
          'collector refused an event; moved to the dead-letter file',
        );
      }
    }
    await this.ack(items.map((i) => i.ev.event_id));
  }

  private async ack(ids: string[]): Promise<void> {
    for (const id of ids) this.pending.delete(id);
    await this.append([{ k: 'ack', ids }]);
    this.onAcked?.();
  }
}
