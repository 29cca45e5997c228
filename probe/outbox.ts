/**
 * The durable outbox. Every event is appended to the probe's journal (fsync'd, with a
 * checksum per record) before anyone may upload it, and is forgotten only after the
 * collector answered `stored` or `duplicate` for its event_id, or after it was written to
 * the dead-letter file (an `ack` record either way).
 *
 * Crash guarantees (kill -9 at any instant):
 * - an event whose add() resolved is on disk and will be uploaded after a restart;
 * - an event the collector stored whose ack was not yet written is uploaded again and
 *   answered `duplicate` (ingest is idempotent by event_id), so nothing is stored twice;
 * - a dead letter is fsync'd to `dead-letter.ndjson` before its ack; an event found there
 *   on open whose ack was lost is acknowledged then, never uploaded or written twice;
 * - a torn trailing record is set aside by the journal, never crashes the probe.
 *
 * Delivery: each event is uploaded until it is acknowledged or dead-lettered, and no
 * event holds back the others (docs/decisions/010-hostile-text-on-the-probe.md):
 * - uploads go in batches (≤ LIMITS.eventsPerBatch events and ≤ the body limit); events
 *   never yet part of a failed upload always go first;
 * - an event the collector `refused` (per event, or alone in a request it refused as a
 *   whole) goes to `dead-letter.ndjson` at once, with the reason;
 * - a batch that fails (5xx, network, timeout, unreadable answer) right after a success is
 *   split in halves that are retried on their own, so one poisoned event ends up alone
 *   while the rest are stored;
 * - a check-in that gets through during an outage ends the outage's backoff at once
 *   (`noteCollectorUp`): the backlog drains when the collector is back, not minutes later;
 * - an event failing alone is retried with its own exponential backoff and jitter; once
 *   it has failed alone `poison.strikes` times, each after the collector showed it was up
 *   (another upload or a check-in succeeded since its previous failure), over at least `poison.minSpanMs`, it goes to
 *   `dead-letter.ndjson` with its last error. An outage (nothing succeeds) never
 *   dead-letters anything: the outbox then waits with exponential backoff and jitter.
 * - 401/403/408/429 answers are about the probe or the collector, not the batch: they
 *   only back off;
 * - events an answer left out are kept and retried a backoff step later, behind new ones;
 * - new events that keep coming go at most once per `minUploadIntervalMs` (default
 *   MIN_UPLOAD_INTERVAL_MS): the first after a quiet spell goes at once, the next ones wait for
 *   the turn and go together. Each upload costs the collector a transaction, whatever its
 *   size, so a probe receiving a message every few hundred ms sends a few batches, not one
 *   request per event. A full batch, a retry, an upload after a failure and `flush()` never wait.
 * Retry state lives in memory: after a restart an event starts its strikes again.
 *
 * A full data folder (storage.ts): an event whose journal record the disk refuses with
 * ENOSPC/EDQUOT/EROFS is held in memory, never uploaded, and journaled first when the
 * storage gate finds space again; add() resolves only then, so a sender waits. Stopping
 * while full gives the held events up (like a kill -9 before their fsync). An answer the
 * collector gave while the disk refused its `ack` record is kept in memory and journaled with
 * the next ack or when space returns: the event is not uploaded again meanwhile, and a probe
 * restarted before that uploads it once more (answered `duplicate`).
 */
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { type EventResult, LIMITS, type ProbeEvent } from '../protocol/index.ts';
import { appendDurably } from './fsutil.ts';
import type { JournalRecord } from './journal.ts';
import type { StorageGate } from './storage.ts';

/** The least time between the starts of two uploads of new events that do not fill a batch. */
export const MIN_UPLOAD_INTERVAL_MS = 1000;

export type UploadFn = (events: ProbeEvent[]) => Promise<EventResult[]>;

export interface OutboxOptions {
  upload: UploadFn;
  logger: Logger;
  deadLetterPath: string;
  /** Exponential backoff between failed uploads, and for an event failing alone. */
  backoff?: { baseMs: number; maxMs: number };
  /**
   * When an event that keeps failing alone is given up: after `strikes` failures each
   * following a success of another upload, spread over at least `minSpanMs`.
   * Default 8 strikes over 30 minutes.
   */
  poison?: { strikes: number; minSpanMs: number };
  maxBatch?: number;
  maxBodyBytes?: number;
  /** See MIN_UPLOAD_INTERVAL_MS; 0 uploads every new event as soon as it is on disk. */
  minUploadIntervalMs?: number;
  random?: () => number;
  now?: () => number;
}

interface Pending {
  ev: ProbeEvent;
  bytes: number;
  /** false until its journal record is fsync'd: only durable events are uploaded. */
  durable: boolean;
  /** The part of a failed batch it is retried with; undefined until it was in a failed upload. */
  seg?: number;
  /** Not uploaded again before this time (ms since the epoch). */
  notBefore: number;
  /** Failed uploads while alone (drives its own backoff). */
  aloneFailures: number;
  /** Failed uploads while alone that followed a success of another upload. */
  strikes: number;
  firstStrikeAt?: number;
  /** The outbox's success count at its last failed upload. */
  successesAtFailure: number;
  /** Set while the disk refused its journal record: settles when it is journaled (or given up). */
  held?: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void };
}

export interface DeadLetter {
  dead_lettered_at: string;
  reason: string;
  event: ProbeEvent;
}

type Failure = 'refused' | 'not_the_batch' | 'failed';

/** How a failed upload is handled: refused as malformed, not about the batch, or failed. */
function classify(err: unknown): Failure {
  const e = err as { refused?: unknown; kind?: unknown; status?: unknown };
  if (e.refused === true) return 'refused';
  if (e.kind === 'http' && typeof e.status === 'number' && [401, 403, 408, 429].includes(e.status)) {
    return 'not_the_batch';
  }
  return 'failed';
}

export class Outbox {
  private readonly pending = new Map<string, Pending>();
  private readonly deadIds = new Set<string>();
  private readonly backoff: { baseMs: number; maxMs: number };
  private readonly poison: { strikes: number; minSpanMs: number };
  private readonly maxBatch: number;
  private readonly maxBodyBytes: number;
  private readonly minUploadIntervalMs: number;
  private readonly random: () => number;
  private readonly now: () => number;
  private nextSeg = 1;
  /** Successful uploads so far (evidence that the collector is up). */
  private successes = 0;
  /** When the last upload began (steady clock, ms). */
  private lastUploadAt = Number.NEGATIVE_INFINITY;
  /** flush() calls waiting: uploads of new events do not wait for their turn meanwhile. */
  private flushing = 0;
  private running?: Promise<void>;
  private stopping = false;
  private wakeLoop?: () => void;
  /** The loop waits for work (an added event may wake it), not in a backoff after a failure. */
  private loopIdle = false;
  private idleWaiters: (() => void)[] = [];
  /** Consecutive failed uploads (0 when the last one succeeded). */
  failures = 0;
  lastError?: string;
  /** Told about every event added (the canary ledger listens). */
  onEventAdded?: (ev: ProbeEvent) => void;
  /** Called after acknowledged events were removed (the store compacts). */
  onAcked?: () => void;
  /** Whether the data folder takes writes (the store sets it). */
  storage?: StorageGate;
  /** Events the disk refused, in the order they were added. */
  private held: Pending[] = [];
  /** Events the collector answered for whose `ack` record the disk refused (see ack()). */
  private readonly unjournaledAcks = new Set<string>();

  constructor(
    private readonly append: (records: JournalRecord[]) => Promise<void>,
    private readonly opts: OutboxOptions,
  ) {
    this.backoff = opts.backoff ?? { baseMs: 1000, maxMs: 5 * 60_000 };
    this.poison = opts.poison ?? { strikes: 8, minSpanMs: 30 * 60_000 };
    this.maxBatch = Math.min(opts.maxBatch ?? LIMITS.eventsPerBatch, LIMITS.eventsPerBatch);
    this.maxBodyBytes = opts.maxBodyBytes ?? LIMITS.probeBodyBytes - 4096;
    this.minUploadIntervalMs = Math.max(0, opts.minUploadIntervalMs ?? MIN_UPLOAD_INTERVAL_MS);
    this.random = opts.random ?? Math.random;
    // Backoff waits on the steady clock: a backward step of the wall clock must not hold events.
    this.now = opts.now ?? (() => performance.timeOrigin + performance.now());
  }

  private entry(ev: ProbeEvent, durable: boolean): Pending {
    return {
      ev,
      bytes: Buffer.byteLength(JSON.stringify(ev)),
      durable,
      notBefore: 0,
      aloneFailures: 0,
      strikes: 0,
      successesAtFailure: 0,
    };
  }

  /**
   * Loads ids already in the dead-letter file (so a re-refused event is not written twice)
   * and acknowledges pending events found there: they were dead-lettered, the ack was lost.
   */
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
    const settled = [...this.pending.keys()].filter((id) => this.deadIds.has(id));
    if (settled.length > 0) await this.ack(settled);
  }

  /** Replays one journal record (called by the store on open). */
  replay(rec: JournalRecord): void {
    if (rec.k === 'ev') {
      const ev = rec.ev as ProbeEvent;
      this.pending.set(ev.event_id, this.entry(ev, true));
    } else if (rec.k === 'ack') {
      for (const id of rec.ids as string[]) this.pending.delete(id);
    }
  }

  /** Stores an event durably; resolves once it is on disk. Adding a pending event_id again is a no-op. */
  async add(ev: ProbeEvent): Promise<void> {
    const known = this.pending.get(ev.event_id);
    if (known) return known.held?.promise;
    const entry = this.entry(ev, false);
    this.pending.set(ev.event_id, entry);
    this.onEventAdded?.(ev);
    if (this.storage?.full) return this.hold(entry);
    try {
      await this.append([{ k: 'ev', ev }]);
    } catch (err) {
      if (this.storage?.noteFailure(err)) return this.hold(entry);
      this.pending.delete(ev.event_id);
      throw err;
    }
    entry.durable = true;
    // Wake an uploader waiting for work; a backoff wait after a failure is not cut short.
    if (this.loopIdle) this.wakeLoop?.();
  }

  /** Keeps an event the disk refused in memory until journalHeld() writes it. */
  private hold(entry: Pending): Promise<void> {
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    entry.held = { promise, resolve, reject };
    this.held.push(entry);
    this.opts.logger.warn(
      { event_id: entry.ev.event_id, type: entry.ev.type, held: this.held.length },
      'event held in memory: the data folder is full',
    );
    return promise;
  }

  /** Events held in memory because the disk refused them. */
  heldCount(): number {
    return this.held.length;
  }

  /** Journals the held events (the storage gate calls this once space returned); throws when it cannot. */
  async journalHeld(): Promise<void> {
    if (this.unjournaledAcks.size > 0) await this.ack([]);
    if (this.held.length === 0) return;
    const list = this.held.splice(0);
    try {
      await this.append(list.map((p) => ({ k: 'ev', ev: p.ev })));
    } catch (err) {
      this.held.unshift(...list);
      throw err;
    }
    for (const p of list) {
      p.durable = true;
      p.held?.resolve();
      p.held = undefined;
    }
    this.opts.logger.info(
      { events: list.length },
      'events held while the data folder was full are journaled',
    );
    if (this.loopIdle) this.wakeLoop?.();
  }

  /** Gives up the held events (at shutdown while full): they were never on disk. */
  releaseHeld(): void {
    const list = this.held.splice(0);
    for (const p of list) {
      this.pending.delete(p.ev.event_id);
      p.held?.reject(new Error('not journaled: the data folder stayed full until shutdown'));
    }
    if (list.length > 0)
      this.opts.logger.error(
        { events: list.length, event_ids: list.slice(0, 20).map((p) => p.ev.event_id) },
        'events held in memory are lost at shutdown: the data folder is full',
      );
  }

  /**
   * Another request to the collector succeeded (the agent's check-in): evidence that the
   * collector is up, so an event still failing alone is a suspect (see the rule above).
   */
  noteCollectorUp(): void {
    this.successes += 1;
    // The last upload failed, yet a check-in got through: if that was an outage, it is over,
    // and what waited for the collector goes now, not after the rest of a backoff that may
    // have grown to minutes. (A lone event that fails on a collector that is up is tried
    // once more per check-in; its strikes count as before.)
    if (this.failures > 0) {
      for (const p of this.pending.values()) p.notBefore = 0;
      this.wakeLoop?.();
    }
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
   * Tries to empty the outbox now (cutting short a backoff wait and making every event
   * due); resolves true when empty, false when `timeoutMs` passed first. Starts the
   * uploader if needed.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    this.start();
    if (this.uploadable() === 0) return true;
    for (const p of this.pending.values()) p.notBefore = 0;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    this.flushing += 1;
    this.wakeLoop?.();
    try {
      return await Promise.race([idle, timeout]);
    } finally {
      this.flushing -= 1;
      clearTimeout(timer);
    }
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

  /**
   * The next upload: events never in a failed upload first (as many as fit), else the
   * due part of a failed batch that has waited longest. `wait` is how long until
   * something is due when nothing is now; `full` says that new events were left out.
   */
  private takeBatch(now: number): { batch: Pending[]; wait: number; full?: boolean } {
    const fresh: Pending[] = [];
    let full = false;
    let bytes = 0;
    const segs = new Map<number, Pending[]>();
    let wait = Number.POSITIVE_INFINITY;
    for (const p of this.pending.values()) {
      if (!p.durable) continue;
      if (p.seg === undefined) {
        if (fresh.length >= this.maxBatch || (fresh.length > 0 && bytes + p.bytes + 1 > this.maxBodyBytes)) {
          full = true;
          continue;
        }
        fresh.push(p);
        bytes += p.bytes + 1;
        continue;
      }
      const list = segs.get(p.seg);
      if (list) list.push(p);
      else segs.set(p.seg, [p]);
    }
    if (fresh.length > 0) return { batch: fresh, wait: 0, full };
    let best: Pending[] | undefined;
    let bestAt = Number.POSITIVE_INFINITY;
    for (const list of segs.values()) {
      const due = Math.max(...list.map((p) => p.notBefore));
      if (due > now) {
        wait = Math.min(wait, due - now);
        continue;
      }
      if (due < bestAt) {
        bestAt = due;
        best = list;
      }
    }
    return best ? { batch: best, wait: 0 } : { batch: [], wait };
  }

  private async loop(): Promise<void> {
    const log = this.opts.logger;
    while (!this.stopping) {
      const now = this.now();
      const { batch, wait, full } = this.takeBatch(now);
      if (batch.length === 0) {
        if (this.uploadable() === 0) for (const w of this.idleWaiters.splice(0)) w();
        this.loopIdle = true;
        await this.sleep(wait);
        this.loopIdle = false;
        continue;
      }
      const turn = this.turnIn(batch, full === true, now);
      if (turn > 0) {
        // Not idle: an added event does not cut the turn short (flush() and stop() do).
        await this.sleep(turn);
        continue;
      }
      this.lastUploadAt = now;
      let results: EventResult[];
      try {
        results = await this.opts.upload(batch.map((p) => p.ev));
      } catch (err) {
        const delay = await this.uploadFailed(batch, err).catch((e: unknown) => {
          log.error({ err: e }, 'outbox could not record a failed upload; retrying');
          return this.backoffMs(Math.max(1, this.failures));
        });
        if (delay > 0) await this.sleep(delay);
        continue;
      }
      // The collector answered: the failure streak ends here, before the acks are
      // written (the backlog can reach 0 while applyResults is still running).
      if (this.failures > 0) log.info({ after_failures: this.failures }, 'outbox upload recovered');
      this.failures = 0;
      this.lastError = undefined;
      this.successes += 1;
      try {
        await this.applyResults(batch, results);
      } catch (err) {
        // The disk refused a dead letter: those events stay pending and are uploaded again.
        // Or it refused the acks: they wait in memory for the next journal write that works
        // (ack()). Never stop the uploader for it.
        log.error(
          { err, unjournaled_acks: this.unjournaledAcks.size },
          'outbox could not record the answer; retrying',
        );
        await this.sleep(this.backoffMs(1));
      }
    }
  }

  /**
   * How long new events that do not fill a batch wait for their turn (see
   * MIN_UPLOAD_INTERVAL_MS): 0 for a full batch, a retry, after a failure or while flushing.
   */
  private turnIn(batch: Pending[], full: boolean, now: number): number {
    if (full || batch[0]?.seg !== undefined || this.failures > 0 || this.flushing > 0) return 0;
    return this.lastUploadAt + this.minUploadIntervalMs - now;
  }

  /** Splits, strikes or dead-letters after a failed upload; returns how long to wait. */
  private async uploadFailed(batch: Pending[], err: unknown): Promise<number> {
    const log = this.opts.logger;
    const message = (err as Error)?.message ?? String(err);
    const now = this.now();
    const kind = classify(err);
    if (kind === 'refused') {
      // The collector refused the request as a whole (malformed or too large): narrow it
      // down until the one event it cannot take is alone, then dead-letter that one.
      if (batch.length > 1) {
        log.warn({ err, batch: batch.length }, 'collector refused a batch; splitting it');
        this.split(batch, 0);
      } else {
        await this.deadLetter([{ ev: batch[0]!.ev, reason: message }]);
      }
      return 0;
    }
    this.failures += 1;
    this.lastError = message;
    const delay = this.backoffMs(this.failures);
    if (kind === 'not_the_batch') {
      log.warn({ err, backlog: this.pending.size, retry_in_ms: Math.round(delay) }, 'outbox upload failed');
      return delay;
    }
    // Right after a success the collector is up, so the batch itself is suspect: split it.
    // In a run of failures (an outage) keep it whole and only wait.
    const afterSuccess = this.failures === 1;
    if (batch.length > 1) {
      if (afterSuccess) this.split(batch, now);
      else this.keepTogether(batch, now + delay);
      log.warn(
        {
          err,
          batch: batch.length,
          split: afterSuccess,
          backlog: this.pending.size,
          retry_in_ms: Math.round(delay),
        },
        afterSuccess ? 'outbox upload failed; retrying the batch in halves' : 'outbox upload failed',
      );
      for (const p of batch) p.successesAtFailure = this.successes;
      return delay;
    }
    const p = batch[0]!;
    p.seg ??= this.nextSeg++;
    p.aloneFailures += 1;
    if (this.successes > p.successesAtFailure) {
      p.strikes += 1;
      p.firstStrikeAt ??= now;
    }
    p.successesAtFailure = this.successes;
    p.notBefore = now + this.backoffMs(p.aloneFailures);
    const span = now - (p.firstStrikeAt ?? now);
    if (p.strikes >= this.poison.strikes && span >= this.poison.minSpanMs) {
      await this.deadLetter([
        {
          ev: p.ev,
          reason:
            `upload failed ${p.aloneFailures} times with this event alone over ${Math.round(span / 1000)} s ` +
            `while other uploads succeeded; last error: ${message}`,
        },
      ]);
      return delay;
    }
    log.warn(
      {
        err,
        event_id: p.ev.event_id,
        strikes: p.strikes,
        retry_in_ms: Math.round(p.notBefore - now),
      },
      'outbox upload of a single event failed',
    );
    return delay;
  }

  /** Two new parts, each retried on its own from `notBefore`. */
  private split(batch: Pending[], notBefore: number): void {
    const half = Math.ceil(batch.length / 2);
    for (const part of [batch.slice(0, half), batch.slice(half)]) this.keepTogether(part, notBefore);
  }

  private keepTogether(part: Pending[], notBefore: number): void {
    const seg = this.nextSeg++;
    for (const p of part) {
      p.seg = seg;
      p.notBefore = notBefore;
    }
  }

  /** Equal-jitter exponential backoff: between half and all of base·2^(n-1), capped. */
  backoffMs(attempt: number): number {
    const cap = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** Math.min(attempt - 1, 30));
    return cap / 2 + (this.random() * cap) / 2;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(done, Math.min(ms, 2 ** 31 - 1)) : undefined;
      const self = this;
      function done(): void {
        clearTimeout(timer);
        if (self.wakeLoop === done) self.wakeLoop = undefined;
        resolve();
      }
      this.wakeLoop = done;
    });
  }

  private async applyResults(batch: Pending[], results: EventResult[]): Promise<void> {
    const acked: string[] = [];
    const refused: { ev: ProbeEvent; reason: string }[] = [];
    const answered = new Set<number>();
    for (const r of results) {
      const ev = batch[r.index]?.ev;
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
      // Kept, and retried after a backoff step behind new events: a collector that never
      // answers for them must not make the uploader spin.
      this.keepTogether(
        batch.filter((_, i) => !answered.has(i)),
        this.now() + this.backoffMs(1),
      );
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
          'event moved to the dead-letter file',
        );
      }
    }
    await this.ack(items.map((i) => i.ev.event_id));
  }

  /**
   * Records that `ids` are done: out of the outbox at once (the collector has them, or the
   * dead-letter file does), then one `ack` record, carrying earlier acks the disk refused. If
   * the disk refuses this one too, its ids join those: the journal still lists the events, so
   * a restart before the next write that works uploads them once more (answered `duplicate`).
   */
  private async ack(ids: string[]): Promise<void> {
    for (const id of ids) this.pending.delete(id);
    const carried = [...this.unjournaledAcks];
    const all = carried.length > 0 ? [...carried, ...ids] : ids;
    if (all.length === 0) return;
    try {
      await this.append([{ k: 'ack', ids: all }]);
    } catch (err) {
      for (const id of ids) this.unjournaledAcks.add(id);
      throw err;
    }
    for (const id of carried) this.unjournaledAcks.delete(id);
    this.onAcked?.();
  }
}
