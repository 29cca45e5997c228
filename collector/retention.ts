/**
 * Retention of raw events (decision 017).
 *
 * The durable research record is canaries, outcomes and findings: an outcome carries the
 * received text, the times and the latency. Raw events are the signed provenance and the
 * input of outcome derivation, needed while outcomes can still change. So:
 * - a canary's events are deleted once its deadline is more than
 *   SILENTDROP_EVENT_RETENTION_DAYS in the past and none of its outcomes is `pending`;
 *   the canary is marked (events_pruned_at) and its outcomes are never derived again
 *   (collector/outcomes.ts refreshOutcomes): they are final.
 * - an event that arrives for a pruned canary later is stored (a resend stays a duplicate),
 *   changes nothing, and is deleted by the next run.
 * - a receipt of a nonce that is no canary of ours (a look-alike: a chat member's text) is
 *   deleted SILENTDROP_LOOKALIKE_RETENTION_DAYS after it was received.
 * - 0 days keeps that kind forever.
 *
 * Work is done in batches of `batchSize`, one transaction each, yielding to the event loop
 * between them; several collectors on one database may run the job at once (rows are taken
 * `skip locked`). The collector runs it on its own timer (startRetentionJob); the timer and
 * `silentdrop admin prune` share one RetentionRunner, so runs in a process never overlap.
 *
 * Each run also keeps the monthly partitions of `events` and `outcomes` (decisions 039, 040),
 * before its deletes: the coming months' are made ahead, and a past month's of `events` is
 * dropped once earlier deletes emptied it, returning its space (outcomes are never deleted).
 */
import type { Logger } from 'pino';
import type { Db } from './db/open.ts';
import { dropEmptyEventPartitions, ensureAllPartitions } from './db/partitions.ts';
import {
  countPrunable,
  pruneCanaryBatch,
  pruneLateEventsBatch,
  pruneLookAlikeBatch,
} from './db/retention.ts';

const DAY_MS = 86_400_000;

export interface RetentionSettings {
  /** Days after a canary's deadline its events are kept (0: forever). */
  eventRetentionDays: number;
  /** Days a look-alike receipt is kept (0: forever). */
  lookAlikeRetentionDays: number;
}

export interface RetentionOptions {
  /** Canaries per transaction (default 500). */
  batchSize?: number;
  /** Look-alike receipts per transaction (default 5,000). */
  lookAlikeBatchSize?: number;
  /** Checked between batches: a run that should stop (the collector is closing) stops there. */
  shouldStop?: () => boolean;
}

export interface RetentionRun {
  /** Canaries whose events were deleted and that are now marked pruned. */
  canaries: number;
  /** Their events, deleted. */
  canaryEvents: number;
  /** Events that arrived for already pruned canaries, deleted. */
  lateEvents: number;
  /** Look-alike receipts deleted. */
  lookAlikes: number;
  /** Canaries left for a later run because outcome derivation held them at that moment. */
  skipped: number;
  batches: number;
  /** Monthly partitions of `events` and `outcomes` made ahead by this run (decisions 039, 040). */
  partitionsCreated: string[];
  /** Of those, made late from rows of the default partition, with the rows moved. */
  partitionsMoved: { name: string; rows: number }[];
  /** Past months' `events` partitions that earlier runs' deletes had emptied, dropped first. */
  partitionsDropped: string[];
}

export const DEFAULT_RETENTION_BATCH = 500;
export const DEFAULT_LOOKALIKE_BATCH = 5000;

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** One run of the job at collector time `now`: every batch there is, until none is left. */
export async function pruneEvents(
  db: Db,
  now: Date,
  settings: RetentionSettings,
  options: RetentionOptions = {},
): Promise<RetentionRun> {
  const batchSize = options.batchSize ?? DEFAULT_RETENTION_BATCH;
  const lookAlikeBatchSize = options.lookAlikeBatchSize ?? DEFAULT_LOOKALIKE_BATCH;
  const stop = options.shouldStop ?? (() => false);
  const run: RetentionRun = {
    canaries: 0,
    canaryEvents: 0,
    lateEvents: 0,
    lookAlikes: 0,
    skipped: 0,
    batches: 0,
    partitionsCreated: [],
    partitionsMoved: [],
    partitionsDropped: [],
  };

  // Partitions first (events and outcomes), following the database's clock, not `now`: a run asked
  // about a later time (`silentdrop admin prune`, tests) must not take this month for a past
  // one. Months ahead are made, and past months that earlier runs' deletes emptied are
  // dropped; this run's deletes come after, and are counted the moment they end, as before
  // partitions. A month not made now because ingest held the table past the lock timeout is
  // made by a later run (months are made two ahead); the deletes go on all the same.
  if (!stop()) {
    const made = await ensureAllPartitions(db);
    run.partitionsCreated = made.created;
    run.partitionsMoved = made.moved;
    run.partitionsDropped = await dropEmptyEventPartitions(db);
  }

  if (settings.eventRetentionDays > 0) {
    const cutoff = new Date(now.getTime() - settings.eventRetentionDays * DAY_MS);
    while (!stop()) {
      const batch = await db.transaction((tx) => pruneCanaryBatch(tx, cutoff, batchSize, now));
      run.batches++;
      run.canaries += batch.canaries;
      run.canaryEvents += batch.events;
      run.skipped += batch.skipped;
      // A short batch is the last; one that pruned nothing (all held) would only spin.
      if (batch.canaries + batch.skipped < batchSize || batch.canaries === 0) break;
      await yieldToEventLoop();
    }
  }
  // Late events for pruned canaries go whatever the setting is now (it may have been raised).
  while (!stop()) {
    const batch = await db.transaction((tx) => pruneLateEventsBatch(tx, batchSize));
    if (batch.canaries === 0) break;
    run.batches++;
    run.lateEvents += batch.events;
    if (batch.canaries < batchSize) break;
    await yieldToEventLoop();
  }
  if (settings.lookAlikeRetentionDays > 0) {
    const cutoff = new Date(now.getTime() - settings.lookAlikeRetentionDays * DAY_MS);
    while (!stop()) {
      const n = await db.transaction((tx) => pruneLookAlikeBatch(tx, cutoff, lookAlikeBatchSize));
      run.batches++;
      run.lookAlikes += n;
      if (n < lookAlikeBatchSize) break;
      await yieldToEventLoop();
    }
  }
  return run;
}

/** Running totals of this process, read by /metrics (sd_events_pruned_total). */
export class RetentionTotals {
  canaries = 0;
  canaryEvents = 0;
  lookAlikes = 0;
  runs = 0;
  failures = 0;

  add(run: RetentionRun): void {
    this.runs++;
    this.canaries += run.canaries;
    this.canaryEvents += run.canaryEvents + run.lateEvents;
    this.lookAlikes += run.lookAlikes;
  }
}

export interface RetentionRunnerOptions extends RetentionOptions {
  /** After a run that deleted events (server.ts: reclaims the space on embedded PGlite). */
  afterPruning?: (run: RetentionRun) => Promise<void>;
}

/**
 * Runs the job for one process, one run at a time: the timer and the admin API
 * (`silentdrop admin prune`) queue behind a run in progress. Counts into `totals`.
 */
export class RetentionRunner {
  readonly totals = new RetentionTotals();
  private queue: Promise<unknown> = Promise.resolve();
  private stopping = false;

  constructor(
    private readonly db: Db,
    readonly settings: RetentionSettings,
    private readonly options: RetentionRunnerOptions = {},
  ) {}

  /** One run at collector time `now`, after any run in progress. */
  run(now: Date): Promise<RetentionRun> {
    const next = this.queue.then(() => this.runNow(now));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(now: Date): Promise<RetentionRun> {
    try {
      const run = await pruneEvents(this.db, now, this.settings, {
        ...this.options,
        shouldStop: () => this.stopping,
      });
      this.totals.add(run);
      if (run.canaryEvents + run.lateEvents + run.lookAlikes > 0 && !this.stopping) {
        await this.options.afterPruning?.(run);
      }
      return run;
    } catch (err) {
      this.totals.failures++;
      throw err;
    }
  }

  /** What a run at `now` would prune, counted up to `cap` canaries and `cap` receipts. */
  preview(now: Date, cap = PREVIEW_CAP) {
    const cutoff = (days: number) => (days > 0 ? new Date(now.getTime() - days * DAY_MS) : null);
    return countPrunable(
      this.db,
      cutoff(this.settings.eventRetentionDays),
      cutoff(this.settings.lookAlikeRetentionDays),
      cap,
    );
  }

  /** Stops a run in progress at its next batch (later runs do nothing) and waits for it. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.queue;
  }
}

/** The bound of a dry run's counts (`capped` says it was reached). */
export const PREVIEW_CAP = 100_000;

export interface RetentionJobOptions {
  /** Between the end of one run and the start of the next (default one hour). */
  intervalMs?: number;
  /** Before the first run (default one minute: after start-up and migrations settle). */
  firstRunAfterMs?: number;
  now?: () => Date;
}

export interface RetentionJob {
  /** Cancels the next run and waits for a running one to stop at its next batch. */
  stop(): Promise<void>;
}

/**
 * Runs the runner on its own timer: the next run is scheduled when the last one ends, so
 * runs never overlap. Failures are logged and counted; the next run tries again.
 */
export function startRetentionJob(
  runner: RetentionRunner,
  logger: Logger,
  options: RetentionJobOptions = {},
): RetentionJob {
  const intervalMs = options.intervalMs ?? 60 * 60_000;
  const now = options.now ?? (() => new Date());
  let stopped = false;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const runOnce = async () => {
    const started = Date.now();
    try {
      const run = await runner.run(now());
      const pruned = run.canaryEvents + run.lateEvents + run.lookAlikes;
      const partitions = run.partitionsCreated.length + run.partitionsDropped.length;
      logger[pruned > 0 || run.canaries > 0 || partitions > 0 ? 'info' : 'debug'](
        { ...run, ms: Date.now() - started },
        'retention: raw events pruned',
      );
    } catch (err) {
      logger.error({ err }, 'retention run failed');
    }
  };
  const schedule = (delayMs: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = runOnce().finally(() => {
        running = undefined;
        schedule(intervalMs);
      });
    }, delayMs);
    timer.unref();
  };
  // Even with both settings at 0: events may still arrive for canaries pruned before.
  schedule(options.firstRunAfterMs ?? 60_000);
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
