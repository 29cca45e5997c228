/**
 * One account the probe holds: its adapter's life (connect, observe, reconnect at
 * check-in after a failure), its conversations, and its send queue with pacing, rate
 * limits, the probe-wide budget and quarantine. Every canary handed to it ends as
 * exactly one sent / rejected / failed event in the outbox, or stays in the ledger to
 * be resumed after a restart; it is never sent twice. While the data folder is full
 * (storage.ts) the queue waits before each send: nothing is sent without its `sending` record.
 */
import type { Logger } from 'pino';
import type { AccountReport, CanaryAssignment, ConversationReport, FailureCode } from '../protocol/index.ts';
import type { Adapter, AdapterFactory, ConversationInfo, ObservedMessage } from './adapters/types.ts';
import type { ClockOffset } from './clock.ts';
import type { ProbeAccountConfig } from './config.ts';
import { type EventContext, failedEvent, receivedEvent, rejectedEvent, sentEvent } from './events.ts';
import { classifyFailure, quarantineFor } from './failures.ts';
import type { CanaryLedger } from './ledger.ts';
import { Pacer, QuietHours, SendDurations, SlidingLimiter } from './limits.ts';
import type { Outbox } from './outbox.ts';
import { QuarantineBook } from './quarantine.ts';
import type { StorageGate } from './storage.ts';

export interface AccountDeps {
  config: ProbeAccountConfig;
  factory: AdapterFactory;
  stateDir: string;
  logger: Logger;
  outbox: Outbox;
  ledger: CanaryLedger;
  quarantine: QuarantineBook;
  quarantineMs: { bannedMs: number; rateLimitedMs: number };
  budget?: SlidingLimiter;
  clock: ClockOffset;
  /** Whether the data folder takes writes; sends wait while it does not. */
  storage?: StorageGate;
  random?: () => number;
}

const DAY = 24 * 3600_000;

export class AccountRunner {
  readonly key: string;
  private adapter?: Adapter;
  private connected = false;
  private connecting?: Promise<void>;
  private lastError?: FailureCode;
  private conversations: ConversationInfo[] = [];
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private stopping = false;
  private wakers = new Set<() => void>();
  private readonly limiter: SlidingLimiter;
  private readonly pacer: Pacer;
  private readonly sendDurations = new SendDurations();
  private readonly quiet: QuietHours;
  readonly log: Logger;

  constructor(private readonly d: AccountDeps) {
    this.key = QuarantineBook.key(d.config.platform, d.config.handle);
    this.log = d.logger;
    this.limiter = SlidingLimiter.forAccount(d.config.rateLimits);
    this.limiter.seed(d.ledger.recentSends(d.config.platform, d.config.handle, Date.now() - DAY));
    this.pacer = new Pacer(d.config.pacing, d.random);
    this.quiet = new QuietHours(d.config.quietHours);
  }

  get handle(): string {
    return this.d.config.handle;
  }

  get platform(): string {
    return this.d.config.platform;
  }

  private eventContext(): EventContext {
    return {
      platform: this.d.config.platform,
      account: this.d.config.handle,
      adapter: { name: this.d.factory.name, version: this.d.factory.version },
      clockOffsetMs: this.d.clock.offsetMs(),
    };
  }

  /** Connects (or reconnects) the adapter and starts observing; never throws. */
  connect(): Promise<void> {
    if (this.connected || this.stopping) return Promise.resolve();
    this.connecting ??= this.doConnect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async doConnect(): Promise<void> {
    const adapter = this.d.factory.create(this.d.config, { logger: this.log, stateDir: this.d.stateDir });
    try {
      await adapter.connect();
      await adapter.observe(
        (m) => this.onMessage(m),
        (err) => this.onAdapterError(adapter, err),
      );
      this.adapter = adapter;
      this.connected = true;
      this.lastError = undefined;
      this.log.info('account connected');
    } catch (err) {
      this.lastError = classifyFailure(err);
      this.log.warn(
        { err, failure: this.lastError },
        'account could not connect; retrying at the next check-in',
      );
      await adapter.close().catch(() => undefined);
    }
  }

  private onAdapterError(adapter: Adapter, err: Error): void {
    if (this.adapter !== adapter) return;
    this.lastError = classifyFailure(err);
    this.log.error({ err, failure: this.lastError }, 'adapter stopped; reconnecting at the next check-in');
    this.connected = false;
    this.adapter = undefined;
    void adapter.close().catch(() => undefined);
  }

  /** Records a `received` event for a message that carries a canary nonce. */
  private async onMessage(m: ObservedMessage): Promise<void> {
    const ev = receivedEvent(this.eventContext(), m, new Date());
    if (!ev) return;
    await this.d.outbox.add(ev);
    this.log.info({ nonce: ev.nonce, conversation: ev.conversation, from: ev.from }, 'canary received');
  }

  async refreshConversations(): Promise<void> {
    if (!this.adapter || !this.connected) return;
    try {
      this.conversations = await this.adapter.listConversations();
    } catch (err) {
      this.log.warn({ err }, 'cannot list conversations; reporting the last known list');
    }
  }

  conversationReports(): ConversationReport[] {
    return this.conversations.map((c) => ({
      platform: this.d.config.platform,
      ref: c.ref,
      kind: c.kind,
      members: c.members.slice(0, 1000),
      ...(c.title ? { title: c.title.slice(0, 256) } : {}),
    }));
  }

  state(): AccountReport['state'] {
    if (this.d.quarantine.get(this.key)) return 'quarantined';
    if (!this.connected) return 'login_required';
    const now = Date.now();
    if (this.quiet.nextAllowedAt(now) > now) return 'quiet';
    return 'active';
  }

  /**
   * The account's report at check-in, with what it can still send: pacing, its limits and what
   * they allow now, the probe's budget left, and `scheduled` canaries handed to it whose send
   * time has not come yet (the agent holds their timers) plus those in its send queue.
   */
  report(scheduled = 0): AccountReport {
    const now = this.d.clock.steady();
    const { pacing, rateLimits: l } = this.d.config;
    const [minute = 0, hour = 0, day = 0] = this.limiter.remaining(now);
    const budget = this.d.budget?.remaining(now)[0];
    const sendMs = this.sendDurations.p90();
    return {
      platform: this.d.config.platform,
      handle: this.d.config.handle,
      region: this.d.config.region,
      adapter: { name: this.d.factory.name, version: this.d.factory.version },
      state: this.state(),
      capacity: {
        pacing_min_ms: Math.min(Math.round(pacing.minMs), 86_400_000),
        pacing_max_ms: Math.min(Math.round(pacing.maxMs), 86_400_000),
        per_minute: Math.min(l.perMinute, 1_000_000),
        per_hour: Math.min(l.perHour, 10_000_000),
        per_day: Math.min(l.perDay, 100_000_000),
        remaining_minute: Math.min(minute, 1_000_000),
        remaining_hour: Math.min(hour, 10_000_000),
        remaining_day: Math.min(day, 100_000_000),
        ...(budget === undefined ? {} : { budget_remaining: Math.min(budget, 100_000_000) }),
        queued: Math.min(1_000_000, this.queued + scheduled),
        ...(sendMs === undefined ? {} : { send_ms: Math.min(Math.round(sendMs), 86_400_000) }),
      },
    };
  }

  /** Canaries waiting in this account's send queue. */
  get pendingSends(): number {
    return this.queued;
  }

  /** Queues a canary whose send time has come. */
  enqueue(a: CanaryAssignment): Promise<void> {
    this.queued += 1;
    const queuedAt = Date.now();
    const run = this.queue.then(() =>
      this.sendOne(a, queuedAt).catch((err) =>
        this.log.error({ err, canary: a.canary_id }, 'canary could not be recorded; it stays in the ledger'),
      ),
    );
    this.queue = run.finally(() => {
      this.queued -= 1;
    });
    return this.queue;
  }

  private async sendOne(a: CanaryAssignment, queuedAt: number): Promise<void> {
    const log = this.log.child({ campaign: a.campaign_id, canary: a.canary_id });
    if (this.d.storage?.full) {
      log.info('data folder full: the send waits until space returns');
      await this.waitFor(this.d.storage.whenWritable());
    }
    if (this.stopping || this.d.ledger.state(a.canary_id) !== 'assigned') return;
    const deadline = this.d.clock.toLocal(Date.parse(a.deadline_at));

    const q = this.d.quarantine.get(this.key);
    if (q) {
      await this.fail(a, q.reason, `account quarantined until ${new Date(q.until).toISOString()}`, log);
      return;
    }
    // Account safety first: quiet hours, pacing, per-account limits, the probe's daily budget. A send
    // that cannot leave before the deadline is not made (its outcome could not be judged),
    // and the reason is recorded as ours, not the platform's.
    const now = Date.now();
    if (now >= deadline) {
      await this.fail(
        a,
        'deadline_missed',
        `the account's send queue held it ${now - queuedAt} ms, past its deadline`,
        log,
      );
      return;
    }
    // Pauses and rate windows run on the steady clock (clock.ts): a step of the wall clock
    // neither stalls the queue nor empties a window; quiet hours are wall-clock time of day.
    const steady = this.d.clock.steady();
    const waits = {
      'quiet hours': this.quiet.nextAllowedAt(now) - now,
      pacing: this.pacer.nextAllowedAt(steady) - steady,
      'the account rate limit': this.limiter.nextAllowedAt(steady) - steady,
      "the probe's daily budget": (this.d.budget?.nextAllowedAt(steady) ?? steady) - steady,
    };
    const [cause, waitMs] = Object.entries(waits).reduce((a, b) => (b[1] > a[1] ? b : a));
    if (now + waitMs >= deadline) {
      await this.fail(a, 'deadline_missed', `${cause} would delay the send past its deadline`, log);
      return;
    }
    if (waitMs > 0) {
      await this.sleep(waitMs);
      if (this.stopping) return; // still `assigned`: resumed after a restart
    }
    await this.connect();
    const adapter = this.adapter;
    if (!adapter || !this.connected) {
      await this.fail(a, this.lastError ?? 'login_required', 'account is not connected', log);
      return;
    }

    const started = this.d.clock.steady();
    try {
      await this.d.ledger.markSending(a.canary_id);
    } catch (err) {
      // The disk refused the `sending` record: not sent; tried again once space returns.
      if (!this.d.storage?.noteFailure(err)) throw err;
      return this.sendOne(a, queuedAt);
    }
    let reachedPlatform = true;
    try {
      const res = await adapter.send(a.conversation, a.text);
      const ctx = this.eventContext();
      if (res.status === 'sent') {
        await this.d.outbox.add(sentEvent(ctx, a, new Date(), res.platformMessageId));
        log.info({ conversation: a.conversation }, 'canary sent');
      } else {
        await this.d.outbox.add(rejectedEvent(ctx, a, new Date(), res.failure, res.notice));
        log.info(
          { conversation: a.conversation, failure: res.failure, notice: res.notice },
          'canary rejected',
        );
        await this.maybeQuarantine(res.failure, undefined, log);
      }
    } catch (err) {
      const failure = classifyFailure(err);
      reachedPlatform =
        failure === 'rate_limited' || failure === 'account_banned' || failure === 'send_timeout';
      await this.d.outbox.add(
        failedEvent(this.eventContext(), a, new Date(), failure, (err as Error).message),
      );
      log.warn({ err, failure }, 'canary send failed');
      if (failure === 'login_required' || failure === 'connection_lost' || failure === 'browser_crashed') {
        this.lastError = failure;
        if (this.adapter === adapter) this.onAdapterError(adapter, err as Error);
      }
      await this.maybeQuarantine(failure, (err as { retryAfterMs?: number }).retryAfterMs, log);
    } finally {
      const t = this.d.clock.steady();
      this.sendDurations.record(t - started);
      this.pacer.sent(t);
      if (reachedPlatform) {
        this.limiter.record(t);
        this.d.budget?.record(t);
      }
    }
  }

  private async fail(a: CanaryAssignment, failure: FailureCode, detail: string, log: Logger): Promise<void> {
    await this.d.outbox.add(failedEvent(this.eventContext(), a, new Date(), failure, detail));
    log.warn({ failure, detail }, 'canary not sent');
  }

  private async maybeQuarantine(
    failure: FailureCode,
    retryAfterMs: number | undefined,
    log: Logger,
  ): Promise<void> {
    const kind = quarantineFor(failure);
    if (!kind) return;
    const ms =
      kind === 'banned'
        ? this.d.quarantineMs.bannedMs
        : Math.max(retryAfterMs ?? 0, this.d.quarantineMs.rateLimitedMs);
    const e = await this.d.quarantine.put(this.key, failure, ms);
    log.warn({ failure, until: new Date(e.until).toISOString() }, 'account quarantined');
  }

  /** Waits for `p`, or until stop() is called. */
  private waitFor(p: Promise<void>): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.wakers.delete(done);
        resolve();
      };
      this.wakers.add(done);
      void p.then(done);
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  /** Stops taking sends, waits for one in flight, closes the adapter. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const w of [...this.wakers]) w();
    await this.queue;
    await this.connecting;
    const adapter = this.adapter;
    this.adapter = undefined;
    this.connected = false;
    await adapter?.close().catch((err) => this.log.warn({ err }, 'adapter close failed'));
  }
}
