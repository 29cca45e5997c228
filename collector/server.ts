/**
 * Runs the collector: opens the database (PGlite or a server), applies migrations,
 * builds the app, listens, and runs the periodic sweep (deadline finaliser, round
 * materialiser, findings and their follow-ups, request-id pruning) and, on its own slower
 * timer, the retention job (collector/retention.ts). Closes gracefully on SIGTERM/SIGINT.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { LIMITS } from '../protocol/index.ts';
import { type AlertOptions, runAlerts } from './alerts.ts';
import { buildApp } from './app.ts';
import type { CollectorConfig } from './config.ts';
import { type Database, openDatabase, reclaimEventSpace, refreshPlannerStatistics } from './db/open.ts';
import { ensureAllPartitions } from './db/partitions.ts';
import { pruneRequestIds } from './db/probes.ts';
import { rollUpOutcomes } from './db/rollups.ts';
import { rollUpTermSets } from './db/term-set-rollups.ts';
import { SdError } from './errors.ts';
import { type FindingsOptions, recomputeFindings } from './findings.ts';
import { advanceFollowups, type FollowupOptions } from './followups.ts';
import { createLogger } from './logger.ts';
import { finaliseOutcomes } from './outcomes.ts';
import {
  type RetentionJobOptions,
  RetentionRunner,
  type RetentionRunnerOptions,
  startRetentionJob,
} from './retention.ts';
import { RoundPlanner } from './rounds.ts';

export interface RunningCollector {
  /** http://host:port of the listening server. */
  url: string;
  app: FastifyInstance;
  database: Database;
  logger: Logger;
  /** Stops the sweep, closes the server (in-flight requests finish) and the database. */
  close(): Promise<void>;
}

/** How often the sweep refreshes planner statistics on embedded PGlite. */
const ANALYZE_EVERY_MS = 10 * 60 * 1000;
/**
 * On shutdown, how long a sweep or rollup in progress may go on after the server has closed
 * before the database is closed under it. Their work is transactional and resumes at the next
 * start; with the database unreachable each of their steps would wait out a connection
 * timeout, and the process must still end within seconds of SIGTERM.
 */
const SWEEP_STOP_WAIT_MS = 2_000;

export interface StartOptions {
  logger?: Logger;
  /** Install SIGTERM/SIGINT handlers that close the collector (the CLI does; the demo may not). */
  handleSignals?: boolean;
  /** How findings are computed on the sweep (grace after deadlines, sequential design). */
  findings?: FindingsOptions;
  /** Isolation and screening follow-ups (when their results are read). */
  followups?: FollowupOptions;
  /** Alert detection and webhook delivery (retries, timeouts). */
  alerts?: AlertOptions;
  /** The retention job's timer and batch sizes (default: first run after a minute, then hourly). */
  retention?: RetentionJobOptions & RetentionRunnerOptions;
}

export async function startCollector(
  config: CollectorConfig,
  options: StartOptions = {},
): Promise<RunningCollector> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  let database: Database;
  try {
    database = await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      poolSize: config.databasePoolSize,
      onIdleError: (err) => logger.warn({ err }, 'idle database connection failed'),
    });
    await database.migrate();
  } catch (err) {
    const where = config.databaseUrl ? 'the DATABASE_URL server' : `${config.dataDir}/pglite`;
    throw new SdError('SD_ERR_DATABASE', `cannot open the database at ${where}: ${(err as Error).message}`);
  }
  const { db } = database;
  // The months events and outcomes will land in (decisions 039, 040); the retention job keeps
  // them made ahead. Not fatal: rows land in the default partition meanwhile, and the next run
  // tries again.
  try {
    const partitions = await ensureAllPartitions(db);
    if (partitions.moved.length > 0)
      logger.warn(partitions, 'monthly partitions made late, from rows of the default partition');
    else if (partitions.created.length > 0) logger.info(partitions, 'monthly partitions made');
    if (partitions.deferred.length > 0)
      logger.warn(partitions, 'monthly partitions not made now (table busy); the retention job tries again');
  } catch (err) {
    logger.warn({ err }, 'monthly partitions not made now; the retention job tries again');
  }
  const planner = new RoundPlanner(db, config.checkinIntervalMs, logger, options.findings);
  const { now: retentionNow, intervalMs, firstRunAfterMs, ...runnerOptions } = options.retention ?? {};
  const retention = new RetentionRunner(
    db,
    { eventRetentionDays: config.eventRetentionDays, lookAlikeRetentionDays: config.lookAlikeRetentionDays },
    { afterPruning: () => reclaimEventSpace(database), ...runnerOptions },
  );
  // Set by close(): a sweep in progress starts no further step, a check-in no planning.
  let stopping = false;
  // A check-in starts a planning and goes on without it (decision 024, "Check-ins do not wait for
  // planning"); the planner runs one at a time, and close() waits for the one in progress.
  const onCheckin = () => {
    if (!stopping) void planner.plan(new Date());
  };
  const app = await buildApp({ db, config, logger, onCheckin, retention });

  let sweeping = false;
  let analysedAt = 0;
  const sweep = async () => {
    if (sweeping || stopping) return;
    sweeping = true;
    try {
      const now = new Date();
      const missing = await finaliseOutcomes(db, now);
      if (missing > 0) logger.info({ missing }, 'outcomes finalised as missing');
      if (stopping) return;
      await recomputeFindings(db, now, options.findings, logger);
      if (stopping) return;
      // Follow-ups and rounds plan canaries from the clock as it is now, not as it was when the
      // sweep began: judging a large campaign takes seconds, and a step planned from a stale
      // `now` handed the probes canaries whose deadline had passed (decision 024).
      await advanceFollowups(
        db,
        new Date(),
        {
          checkinIntervalMs: config.checkinIntervalMs,
          screenClearance: config.screenClearance,
          ...options.followups,
        },
        logger,
      );
      if (stopping) return;
      await planner.plan(new Date());
      if (stopping) return;
      try {
        await runAlerts(
          db,
          now,
          { probeSilentAfterMs: config.probeSilentAfterMs, ...options.alerts },
          logger,
        );
      } catch (err) {
        logger.error({ err }, 'alerts failed');
      }
      if (stopping) return;
      await pruneRequestIds(db, new Date(now.getTime() - 2 * LIMITS.signatureWindowMs));
      if (!stopping && now.getTime() - analysedAt > ANALYZE_EVERY_MS) {
        analysedAt = now.getTime();
        await refreshPlannerStatistics(database);
      }
    } catch (err) {
      if (stopping) logger.info({ err }, 'sweep cut short by the shutdown');
      else logger.error({ err }, 'sweep failed');
    } finally {
      sweeping = false;
    }
  };
  const timer = setInterval(() => void sweep(), config.sweepIntervalMs);
  timer.unref();
  // Rollups of outcomes (collector/db/rollups.ts, decision 022): on their own timer, since
  // the first run on a big database reads every outcome, and the sweep must not wait for it.
  let rollingUp = false;
  const rollUp = async () => {
    if (rollingUp || stopping) return;
    rollingUp = true;
    try {
      const started = Date.now();
      const run = await rollUpOutcomes(db);
      if (run.cells > 0) logger.debug({ ...run, ms: Date.now() - started }, 'rollups updated');
      // Term-set rollups (decision 033): the terms view's list.
      const termSets = await rollUpTermSets(db);
      if (termSets.advanced + termSets.recomputed > 0)
        logger.debug({ ...termSets, ms: Date.now() - started }, 'term-set rollups updated');
    } catch (err) {
      if (stopping) logger.info({ err }, 'rollup cut short by the shutdown');
      else logger.error({ err }, 'rollup failed');
    } finally {
      rollingUp = false;
    }
  };
  const rollupTimer = setInterval(() => void rollUp(), config.sweepIntervalMs);
  rollupTimer.unref();
  // Not in the sweep: a run may take minutes on a big database, and the sweep must not wait.
  const retentionJob = startRetentionJob(retention, logger.child({ job: 'retention' }), {
    ...(retentionNow ? { now: retentionNow } : {}),
    ...(intervalMs === undefined ? {} : { intervalMs }),
    ...(firstRunAfterMs === undefined ? {} : { firstRunAfterMs }),
  });

  let address: string;
  try {
    address = await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    clearInterval(timer);
    clearInterval(rollupTimer);
    await retentionJob.stop();
    await retention.stop();
    await app.close();
    await database.close();
    throw new SdError(
      'SD_ERR_CONFIG',
      `cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`,
    );
  }
  logger.info(
    { url: address, database: database.driver, dataDir: config.databaseUrl ? undefined : config.dataDir },
    'collector listening',
  );

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      stopping = true;
      clearInterval(timer);
      clearInterval(rollupTimer);
      await retentionJob.stop();
      await app.close();
      // After the server: an admin request's run has finished or stops at its next batch.
      await retention.stop();
      // A sweep or rollup in progress finishes its step, within a bound: a step on an
      // unreachable database waits out a connection timeout per query (per campaign), and the
      // closed database fails what is left of it at once.
      const giveUpAt = Date.now() + SWEEP_STOP_WAIT_MS;
      const busy = () => sweeping || rollingUp || planner.running;
      while (busy() && Date.now() < giveUpAt) await new Promise((r) => setTimeout(r, 20));
      if (busy()) logger.info('closing the database under a sweep still in progress');
      await database.close();
      logger.info('collector stopped');
    })();
    return closing;
  };

  if (options.handleSignals) {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'shutting down');
      close().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  return { url: address, app, database, logger, close };
}
