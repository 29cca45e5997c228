/**
 * The probe agent: `startProbe(config)` opens the durable store, loads or registers
 * the identity, starts one AccountRunner per configured account, checks in on a
 * node-cron schedule (accounts, conversations, backlog, clock), schedules each
 * handed-out canary at its send_at (collector clock → probe clock), and uploads the
 * outbox in the background. `stop()` shuts down gracefully: cron off, timers off, the
 * send in flight finished, adapters closed, the outbox flushed as far as it goes.
 * A full data folder (storage.ts) is reported at check-in and in status.json; hand-outs
 * the journal refused are held here and taken once space returns.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import { Value } from 'typebox/value';
import {
  type CanaryAssignment,
  CheckinResponse,
  type ClockEstimate,
  type ConversationReport,
  PROTOCOL_VERSION,
} from '../protocol/index.ts';
import { AccountRunner } from './account.ts';
import { loadAdapter } from './adapters/registry.ts';
import { CollectorClient, CollectorError } from './client.ts';
import { ClockOffset } from './clock.ts';
import { accountStateDir, type ProbeConfig } from './config.ts';
import { failedEvent } from './events.ts';
import { atomicWriteFile, ensurePrivateDir } from './fsutil.ts';
import { loadOrRegister } from './identity.ts';
import { SlidingLimiter } from './limits.ts';
import { createProbeLogger } from './logger.ts';
import { collectorFetch, describeRoute } from './proxy.ts';
import { QuarantineBook } from './quarantine.ts';
import type { StorageReport } from './storage.ts';
import { openProbeStore, type ProbeStore } from './store.ts';
import { SOFTWARE_VERSION } from './version.ts';

export interface StartProbeOptions {
  logger?: Logger;
  /** Install SIGTERM/SIGINT handlers that call stop() (the CLI does). */
  handleSignals?: boolean;
  /** Run the first check-in right away (default true). */
  checkinOnStart?: boolean;
  /** How long stop() keeps trying to empty the outbox (default 5 s). */
  flushTimeoutMs?: number;
  /** Outbox backoff (tests shorten it). */
  backoff?: { baseMs: number; maxMs: number };
  /** Backoff for registration and for a failed check-in (default 2 s doubling to 5 min). */
  retry?: { baseMs: number; maxMs: number };
  /** How often a full data folder is checked for space (default 5 s). */
  storageRetryMs?: number;
  fetch?: typeof fetch;
}

export interface ProbeHandle {
  probeId: string;
  /** Checks in now (the cron does this on schedule). */
  checkin(): Promise<CheckinResponse | undefined>;
  /** Uploads what the outbox holds; true when it is empty. */
  flush(timeoutMs?: number): Promise<boolean>;
  status(): ProbeStatus;
  stop(): Promise<void>;
  /** Resolves when stop() finished (by a call or a signal). */
  stopped: Promise<void>;
}

export interface ProbeStatus {
  probeId: string;
  backlog: number;
  deadLetters: number;
  scheduled: number;
  clock?: ClockEstimate;
  accounts: { platform: string; handle: string; state: string }[];
  lastCheckinAt?: string;
  lastCheckinError?: string;
  /** Whether the data folder takes writes. */
  storage: StorageReport;
  /** Canaries handed out that the journal refused, waiting for space. */
  deferredCanaries: number;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** The longest a probe's check-ins lag their cron ticks (`checkinPhaseMs`). */
export const MAX_CHECKIN_PHASE_MS = 5000;

/**
 * How long after each tick of its check-in cron the probe checks in: the same delay every tick,
 * drawn from its id, under half the cron's period (`periodMs`, the time between its next two
 * ticks) and at most 5 s. Probes on one schedule still spread their check-ins over the first
 * seconds after each tick, so a collector is not met by all of them at once; and each keeps a steady rhythm,
 * which the collector's planner counts on (collector/capacity.ts `nextCheckin`): it makes a
 * canary due by when the sender's probe will next check in, judged from the gap between its
 * last two check-ins. A fresh random delay each tick (node-cron's `maxRandomDelay`, up to 5 s,
 * which this replaced) made that gap say little: on a 2-s schedule consecutive check-ins came
 * from 0 to 7 s apart, and a follow-up canary with a 3-s deadline often reached no probe in time.
 */
export function checkinPhaseMs(probeId: string, periodMs: number): number {
  const bound = Math.min(MAX_CHECKIN_PHASE_MS, Math.floor(periodMs / 2));
  if (!(bound > 0)) return 0;
  return createHash('sha256').update(probeId).digest().readUInt32BE(0) % bound;
}

export async function startProbe(config: ProbeConfig, options: StartProbeOptions = {}): Promise<ProbeHandle> {
  const root = options.logger ?? createProbeLogger({ level: config.logLevel });
  await ensurePrivateDir(config.dataDir);

  const clockPath = join(config.dataDir, 'clock.json');
  const clock = new ClockOffset(8, await readClock(clockPath));
  // Only the collector's traffic goes through a proxy; the adapters reach their platforms
  // directly from this machine (the vantage point being measured).
  const proxied = options.fetch ? undefined : collectorFetch(config.proxyRoutes);
  for (const route of config.proxyRoutes) {
    if (route.proxy || route.source === 'no_proxy')
      root.info(
        { collector_url: route.collectorUrl, proxy: describeRoute(route) },
        route.proxy ? 'collector traffic goes through a proxy' : 'collector reached directly (NO_PROXY)',
      );
  }
  const fetchImpl = options.fetch ?? proxied?.fetch;
  const client = new CollectorClient({
    baseUrl: config.collectorUrl,
    fallbackUrls: config.collectorUrls.slice(1),
    now: () => clock.toCollector(Date.now()),
    ...(fetchImpl ? { fetch: fetchImpl } : {}),
  });
  const identity = await loadOrRegister({
    dataDir: config.dataDir,
    collectorUrl: config.collectorUrl,
    enrollmentToken: config.enrollmentToken,
    country: config.country,
    asn: config.asn,
    label: config.label,
    client,
    logger: root,
    ...(options.retry ? { retry: options.retry } : {}),
  }).catch(async (err: unknown) => {
    await proxied?.close();
    throw err;
  });
  client.setIdentity(identity);
  const log = root.child({ probe: identity.probeId });

  /**
   * A 401 whose Date header shows the probe's clock far from the collector's (beyond what the
   * offset explains): signed requests would keep falling outside the window, so take a
   * rough offset from the header now. True when it did.
   */
  const resyncFrom = (err: unknown): boolean => {
    if (!(err instanceof CollectorError) || err.status !== 401 || err.serverDate === undefined) return false;
    const drift = err.serverDate - clock.toCollector(Date.now());
    if (Math.abs(drift) <= 60_000) return false;
    clock.seedRough(err.serverDate, Date.now());
    log.warn({ drift_ms: drift }, 'probe clock is far from the collector clock; re-estimating');
    return true;
  };

  const store: ProbeStore = await openProbeStore(join(config.dataDir, 'outbox'), {
    logger: log.child({ component: 'outbox' }),
    // An upload refused for the clock re-seeds it and checks in (which measures afresh): the
    // outbox's next try is signed right, without waiting for the check-in schedule.
    upload: (events) =>
      client.uploadEvents(events).catch((err: unknown) => {
        if (resyncFrom(err)) void checkin();
        throw err;
      }),
    ...(options.backoff ? { backoff: options.backoff } : {}),
    ...(options.storageRetryMs ? { storageRetryMs: options.storageRetryMs } : {}),
  });
  const { outbox, ledger, storage } = store;
  const quarantine = await QuarantineBook.open(config.dataDir);
  const budget = config.budgetPerDay ? SlidingLimiter.daily(config.budgetPerDay) : undefined;

  const runners = new Map<string, AccountRunner>();
  for (const account of config.accounts) {
    const factory = await loadAdapter(account.platform);
    const runner = new AccountRunner({
      config: account,
      factory,
      stateDir: accountStateDir(config.dataDir, account.platform, account.handle),
      logger: log.child({ account: account.handle, adapter: account.platform }),
      outbox,
      ledger,
      quarantine,
      quarantineMs: config.quarantine,
      ...(budget ? { budget } : {}),
      clock,
      storage,
    });
    runners.set(runner.key, runner);
  }

  let stopping = false;
  const timers = new Map<string, NodeJS.Timeout>();
  const inflight = new Set<Promise<void>>();
  let lastCheckinAt: string | undefined;
  let lastCheckinError: string | undefined;
  let extraCheckin: NodeJS.Timeout | undefined;
  let checkinFailures = 0;
  const retry = options.retry ?? { baseMs: 2000, maxMs: 5 * 60_000 };
  const statusPath = join(config.dataDir, STATUS_FILE);

  const runnerFor = (a: CanaryAssignment) => runners.get(QuarantineBook.key(a.platform, a.sender));
  /** Canaries whose send time has not come, by canary id: the account (runner key) that will send each. */
  const scheduledBy = new Map<string, string>();
  const scheduledFor = (key: string) => {
    let n = 0;
    for (const k of scheduledBy.values()) if (k === key) n++;
    return n;
  };

  const recordWithoutSend = async (
    a: CanaryAssignment,
    failure: 'adapter_error' | 'send_timeout' | 'deadline_missed',
    detail: string,
  ) => {
    const runner = runnerFor(a);
    const recorded = outbox.add(
      failedEvent(
        {
          platform: a.platform,
          account: a.sender,
          adapter: runner ? runner.report().adapter : { name: a.platform, version: 'unknown' },
          clockOffsetMs: clock.offsetMs(),
        },
        a,
        new Date(),
        failure,
        detail,
      ),
    );
    log.warn({ canary: a.canary_id, campaign: a.campaign_id, failure, detail }, 'canary recorded as failed');
    await recorded.catch((err: unknown) =>
      log.error({ err, canary: a.canary_id }, 'canary failure could not be recorded; it stays in the ledger'),
    );
  };

  const track = (p: Promise<void>) => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };

  const due = (a: CanaryAssignment) => {
    timers.delete(a.canary_id);
    scheduledBy.delete(a.canary_id);
    if (stopping) return;
    const runner = runnerFor(a);
    if (!runner) {
      track(recordWithoutSend(a, 'adapter_error', `this probe holds no account ${a.platform}/${a.sender}`));
      return;
    }
    track(runner.enqueue(a));
  };

  const schedule = (a: CanaryAssignment) => {
    if (timers.has(a.canary_id) || stopping) return;
    scheduledBy.set(a.canary_id, QuarantineBook.key(a.platform, a.sender));
    const arm = () => {
      const wait = clock.toLocal(Date.parse(a.send_at)) - Date.now();
      if (wait > MAX_TIMER_MS) {
        timers.set(a.canary_id, setTimeout(arm, MAX_TIMER_MS));
        return;
      }
      timers.set(
        a.canary_id,
        setTimeout(() => due(a), Math.max(0, wait)),
      );
    };
    arm();
  };

  /**
   * Hand-outs the journal could not take (data folder full), by canary id: never sent before
   * their record is on disk; taken when space returns (the collector hands them out again
   * too, until it has their send report). Bounded: beyond it, the collector's next hand-outs do.
   */
  const deferred = new Map<string, CanaryAssignment>();
  const MAX_DEFERRED = 1000;
  const accept = async (a: CanaryAssignment) => {
    if (ledger.state(a.canary_id) !== undefined) return; // handed out before: never send twice
    const defer = () => {
      if (deferred.size < MAX_DEFERRED) deferred.set(a.canary_id, a);
      log.warn(
        { canary: a.canary_id, deferred: deferred.size },
        'canary not taken yet: the data folder is full',
      );
    };
    if (storage.full) return defer();
    try {
      if (!(await ledger.assign(a))) return;
    } catch (err) {
      if (storage.noteFailure(err)) return defer();
      throw err;
    }
    deferred.delete(a.canary_id);
    log.debug({ canary: a.canary_id, campaign: a.campaign_id, send_at: a.send_at }, 'canary scheduled');
    schedule(a);
  };

  // Resume what a previous run left: never re-send an interrupted send.
  const { waiting, interrupted } = ledger.unfinished();
  // Tracked, not awaited: on a full disk they wait for space, and the probe must still start.
  for (const a of interrupted) {
    track(
      recordWithoutSend(
        a,
        'send_timeout',
        'the probe stopped during the send; unknown whether the message left',
      ),
    );
  }
  for (const a of waiting) {
    if (clock.toCollector(Date.now()) > Date.parse(a.deadline_at)) {
      track(
        recordWithoutSend(
          a,
          'deadline_missed',
          'not sent: the probe was not running until after the deadline',
        ),
      );
    } else {
      schedule(a);
    }
  }

  await Promise.all([...runners.values()].map((r) => r.connect()));
  outbox.start();

  let checkinRunning: Promise<CheckinResponse | undefined> | undefined;
  let retriedAfterClock = false;
  const checkin = (): Promise<CheckinResponse | undefined> => {
    if (stopping) return Promise.resolve(undefined);
    checkinRunning ??= doCheckin().finally(() => {
      checkinRunning = undefined;
    });
    return checkinRunning;
  };

  const doCheckin = async (): Promise<CheckinResponse | undefined> => {
    await Promise.all(
      [...runners.values()].map(async (r) => {
        await r.connect();
        await r.refreshConversations();
      }),
    );
    const conversations: ConversationReport[] = [];
    for (const r of runners.values()) conversations.push(...r.conversationReports());
    const estimate = clock.estimate();
    const mark = clock.mark();
    const t0 = Date.now();
    let res: CheckinResponse;
    try {
      const answer: unknown = await client.checkin({
        protocol: PROTOCOL_VERSION,
        t0,
        software_version: SOFTWARE_VERSION,
        accounts: [...runners.values()].map((r) => r.report(scheduledFor(r.key))),
        conversations: conversations.slice(0, 2000),
        outbox_backlog: outbox.backlog(),
        dead_letters: outbox.deadLetters(),
        ...(estimate ? { clock: estimate } : {}),
        storage: storage.report(),
      });
      res = checkedAnswer(answer);
    } catch (err) {
      lastCheckinError = (err as Error).message;
      if (err instanceof BadAnswerError) {
        // Nothing from an answer that does not match the protocol is acted on.
        log.error({ problems: err.problems }, 'check-in answer does not match the protocol; ignored');
        await failedCheckin();
        return undefined;
      }
      // A clock far off makes every signed request fall outside the collector's window:
      // take a rough offset from its Date header so the next check-in gets through.
      if (resyncFrom(err) && !retriedAfterClock) {
        retriedAfterClock = true;
        return doCheckin();
      }
      log.warn({ err }, 'check-in failed; trying again with backoff');
      await failedCheckin();
      return undefined;
    } finally {
      retriedAfterClock = false;
    }
    const t3 = Date.now();
    outbox.noteCollectorUp();
    const est = clock.add(t0, res.t1, res.t2, t3, mark);
    if (est)
      await atomicWriteFile(clockPath, `${JSON.stringify(est)}\n`).catch((err) =>
        log.warn({ err }, 'cannot save the clock estimate'),
      );
    lastCheckinAt = new Date(t3).toISOString();
    lastCheckinError = undefined;
    checkinFailures = 0;
    for (const a of res.canaries ?? []) await accept(a);
    log.info(
      {
        canaries: res.canaries?.length ?? 0,
        offset_ms: est?.offset_ms,
        rtt_ms: est?.rtt_ms,
        backlog: outbox.backlog(),
      },
      'checked in',
    );
    // Accounts, conversations or values the collector could not store (decision 012).
    if (res.refused?.length) log.warn({ refused: res.refused }, 'the collector refused part of the check-in');
    scheduleExtraCheckin(res.next_checkin_at);
    await writeStatus();
    return res;
  };

  /** A failed check-in is tried again with backoff, sooner than the cron if that is later. */
  const failedCheckin = async () => {
    const wait = Math.min(retry.maxMs, retry.baseMs * 2 ** Math.min(checkinFailures, 20));
    checkinFailures += 1;
    const delay = Math.round(wait / 2 + (Math.random() * wait) / 2);
    await writeStatus();
    clearTimeout(extraCheckin);
    const cronNext = (task?.getNextRun()?.getTime() ?? Number.POSITIVE_INFINITY) + phase;
    if (stopping || Date.now() + delay >= cronNext - 1000) return;
    extraCheckin = setTimeout(() => void checkin(), delay);
  };

  /** status.json for `silentdrop probe status`, written whole (temp file + rename) each time. */
  const writeStatus = async () => {
    const s = statusNow();
    const file: ProbeStatusFile = {
      version: 1,
      written_at: new Date().toISOString(),
      pid: process.pid,
      probe_id: s.probeId,
      collector_url: client.baseUrl,
      collector_urls: config.collectorUrls,
      proxies: config.proxyRoutes.map((r) => ({ collector_url: r.collectorUrl, route: describeRoute(r) })),
      last_checkin_at: s.lastCheckinAt ?? null,
      last_checkin_error: s.lastCheckinError ?? null,
      clock: s.clock ?? null,
      backlog: s.backlog,
      dead_letters: s.deadLetters,
      scheduled: s.scheduled,
      accounts: s.accounts,
      storage: s.storage,
      deferred_canaries: s.deferredCanaries,
    };
    await atomicWriteFile(statusPath, `${JSON.stringify(file, null, 2)}\n`).catch((err) =>
      // While the folder is full this fails at every check-in; the gate said so once.
      storage.full
        ? log.debug({ err }, 'cannot write the status file')
        : log.warn({ err }, 'cannot write the status file'),
    );
  };

  // Our own overlap guard: node-cron's `noOverlap` warns on the console from inside the
  // library; a skipped tick belongs in the probe's log.
  let cronCheckinRunning = false;
  let task: ScheduledTask | undefined;
  let phaseTimer: NodeJS.Timeout | undefined;
  let phaseDone: (() => void) | undefined;
  let phase = 0;
  task = cron.schedule(
    config.checkinCron,
    async () => {
      if (cronCheckinRunning) {
        log.debug('previous check-in still running; skipping this tick');
        return;
      }
      cronCheckinRunning = true;
      try {
        if (phase > 0)
          await new Promise<void>((resolve) => {
            phaseDone = resolve;
            phaseTimer = setTimeout(resolve, phase);
          });
        await checkin();
      } finally {
        cronCheckinRunning = false;
      }
    },
    { name: `probe-checkin-${identity.probeId}` },
  );
  // The cron's period: the time between its next two ticks, taken once (the phase stays put).
  const [tick1, tick2] = task.getNextRuns(2);
  phase = checkinPhaseMs(identity.probeId, tick1 && tick2 ? tick2.getTime() - tick1.getTime() : 0);

  /** The collector may ask for the next check-in sooner than the cron would run it. */
  const scheduleExtraCheckin = (nextAt: string) => {
    clearTimeout(extraCheckin);
    const local = clock.toLocal(Date.parse(nextAt));
    const cronNext = (task?.getNextRun()?.getTime() ?? Number.POSITIVE_INFINITY) + phase;
    if (!Number.isFinite(local) || local >= cronNext - 1000 || stopping) return;
    extraCheckin = setTimeout(() => void checkin(), Math.max(1000, local - Date.now()));
  };

  // The probe's clock stepped: the estimate is shifted already (clock.ts); measure afresh now.
  clock.onStep = (stepMs) => {
    log.warn(
      { step_ms: Math.round(stepMs), offset_ms: clock.offsetMs() },
      'probe clock stepped; offset shifted, checking in',
    );
    clearTimeout(extraCheckin);
    if (stopping) return;
    extraCheckin = setTimeout(() => void checkin(), 0);
    // node-cron waits for the slot it planned on the old clock: after a backward step that is
    // minutes away. Started again, it plans from the clock as it is now.
    void Promise.resolve(task?.stop())
      .then(() => (stopping ? undefined : task?.start()))
      .catch((err: unknown) => log.error({ err }, 'cannot restart the check-in schedule'));
  };
  const stepWatch = setInterval(() => clock.followSteps(), 1000);
  stepWatch.unref();

  // Space back: take the hand-outs the journal refused, and say so in status.json.
  storage.onChange = (report) => {
    if (report.state === 'ok')
      for (const a of [...deferred.values()])
        track(
          accept(a).catch((err: unknown) =>
            log.error({ err, canary: a.canary_id }, 'deferred canary not taken'),
          ),
        );
    void writeStatus();
  };

  if (options.checkinOnStart !== false) await checkin();
  else await writeStatus();
  log.info(
    { accounts: runners.size, country: config.country, asn: config.asn, cron: config.checkinCron },
    'probe started',
  );

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => {
    resolveStopped = r;
  });
  let stopping$: Promise<void> | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    log.info({ signal: sig }, 'shutting down');
    void stop();
  };

  const stop = (): Promise<void> => {
    stopping$ ??= (async () => {
      stopping = true;
      clearInterval(stepWatch);
      await task?.destroy();
      clearTimeout(phaseTimer);
      phaseDone?.();
      clearTimeout(extraCheckin);
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
      scheduledBy.clear();
      await checkinRunning?.catch(() => undefined);
      // A full folder: one last look for space, then the sends waiting for it give up.
      if (storage.full) await storage.check();
      storage.stop();
      outbox.releaseHeld();
      await Promise.all([...runners.values()].map((r) => r.stop()));
      await Promise.all([...inflight]);
      const empty = await outbox.flush(options.flushTimeoutMs ?? 5000);
      if (!empty) log.warn({ backlog: outbox.backlog() }, 'outbox not empty at shutdown; it is kept on disk');
      await store.close();
      await proxied?.close();
      if (options.handleSignals) {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
      log.info('probe stopped');
      resolveStopped();
    })();
    return stopping$;
  };

  if (options.handleSignals) {
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  function statusNow(): ProbeStatus {
    return {
      probeId: identity.probeId,
      backlog: outbox.backlog(),
      deadLetters: outbox.deadLetters(),
      scheduled: timers.size,
      clock: clock.estimate(),
      accounts: [...runners.values()].map((r) => ({
        platform: r.platform,
        handle: r.handle,
        state: r.state(),
      })),
      lastCheckinAt,
      lastCheckinError,
      storage: storage.report(),
      deferredCanaries: deferred.size,
    };
  }

  return {
    probeId: identity.probeId,
    checkin,
    flush: (timeoutMs = 10_000) => outbox.flush(timeoutMs),
    status: statusNow,
    stop,
    stopped,
  };
}

/** In the data folder: what the running probe last saw, for `silentdrop probe status`. */
export const STATUS_FILE = 'status.json';

export interface ProbeStatusFile {
  version: 1;
  written_at: string;
  pid: number;
  probe_id: string;
  /** The address that answered last. */
  collector_url: string;
  collector_urls: string[];
  /** How each collector address is reached: `direct`, or the proxy (credentials redacted) and its source. */
  proxies?: { collector_url: string; route: string }[];
  last_checkin_at: string | null;
  last_checkin_error: string | null;
  clock: ClockEstimate | null;
  backlog: number;
  dead_letters: number;
  scheduled: number;
  accounts: { platform: string; handle: string; state: string }[];
  /** Absent in files written before it existed. */
  storage?: StorageReport;
  deferred_canaries?: number;
}

class BadAnswerError extends Error {
  constructor(readonly problems: string[]) {
    super(`check-in answer does not match the protocol: ${problems.join('; ')}`);
    this.name = 'BadAnswerError';
  }
}

/**
 * The check-in answer, checked against protocol/checkin.ts before any of it is used.
 * Fields this probe does not know are dropped first (a newer collector may add some).
 */
function checkedAnswer(answer: unknown): CheckinResponse {
  const copy = Value.Clean(CheckinResponse, Value.Clone(answer));
  if (Value.Check(CheckinResponse, copy)) return copy;
  const problems = [...Value.Errors(CheckinResponse, copy)]
    .slice(0, 5)
    .map((e) => `${e.instancePath || '/'}: ${e.message}`);
  throw new BadAnswerError(problems);
}

async function readClock(path: string): Promise<ClockEstimate | undefined> {
  try {
    const e = JSON.parse(await readFile(path, 'utf8')) as ClockEstimate;
    return typeof e.offset_ms === 'number' ? e : undefined;
  } catch {
    return undefined;
  }
}
