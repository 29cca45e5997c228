/**
 * Builds the collector's fastify app. Never listens: server.ts does that, tests use
 * `app.inject`. Routes validate with the protocol's typebox schemas and delegate to
 * services and repositories.
 */
import { type TypeBoxTypeProvider, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { LIMITS } from '../protocol/index.ts';
import type { CollectorConfig } from './config.ts';
import type { Db } from './db/open.ts';
import { AuthFailureLimiter } from './http/auth-failures.ts';
import { registerBodyParsers } from './http/body.ts';
import { registerErrorHandling } from './http/errors.ts';
import type { RateLimitOptions } from './http/rate-limit.ts';
import { createLogger } from './logger.ts';
import { RetentionRunner } from './retention.ts';
import { adminRoutes } from './routes/admin.ts';
import { healthRoutes } from './routes/health.ts';
import { probeRoutes } from './routes/probe.ts';
import { researchApi } from './routes/research.ts';

export interface AppOptions {
  db: Db;
  config: Pick<CollectorConfig, 'adminToken' | 'hashKey' | 'checkinIntervalMs'> &
    Partial<
      Pick<
        CollectorConfig,
        | 'probeSilentAfterMs'
        | 'trustProxy'
        | 'eventRetentionDays'
        | 'lookAlikeRetentionDays'
        | 'researchStatementTimeoutMs'
        | 'exportMaxConcurrent'
        | 'exportTimeoutMs'
        | 'exportStallMs'
      >
    >;
  logger?: Logger;
  /** Collector clock (tests move it). */
  now?: () => Date;
  /**
   * Called at each check-in before its canaries are handed out, with the probe checking in (the
   * collector starts a round planning). The check-in does not wait for what it starts.
   */
  onCheckin?: (now: Date, probeId: string) => void;
  /** Research API rate limit per client (default 600 a minute). */
  rateLimit?: RateLimitOptions;
  /** Probe API rate limit per probe (default 1,200 a minute). */
  probeRateLimit?: RateLimitOptions;
  /** Built dashboard to serve at `/` (default dashboard/dist). */
  dashboardDir?: string;
  /** Statement timeout of research API queries (default: the config's, else 30 s; enforced on a Postgres server). */
  researchStatementTimeoutMs?: number;
  /** Research exports streaming at once (default: the config's, else 4). */
  maxConcurrentExports?: number;
  /** Longest run of one research export on a server (default: the config's, else 1 h, decision 026). */
  exportTimeoutMs?: number;
  /** A research export whose client read nothing this long is cut (default: the config's, else 60 s). */
  exportStallMs?: number;
  /** Admin API rate limit per client address (HMAC; default 300 a minute). */
  adminRateLimit?: RateLimitOptions;
  /** Refused (401/403) probe and admin requests per client address (HMAC) before 429 (default 60 a minute). */
  authFailureLimit?: RateLimitOptions;
  /**
   * The retention job of this process (server.ts), run by `POST /admin/v1/retention/run` and
   * counted at /metrics. Default: one on `db` with the config's windows (365 and 30 days).
   */
  retention?: RetentionRunner;
}

/** A hop count becomes "trust the first N hops"; addresses and false pass through. */
function trustProxySetting(v: boolean | number | string[] | undefined) {
  if (typeof v === 'number') return (_address: string, hop: number) => hop < v;
  return v ?? false;
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger ?? createLogger({ level: 'silent' }),
    bodyLimit: LIMITS.probeBodyBytes,
    // X-Forwarded-For only from the proxies the operator named (SILENTDROP_TRUST_PROXY), so
    // rate limits see clients; addresses are only ever hashed, never stored or logged.
    trustProxy: trustProxySetting(options.config.trustProxy),
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  // Fastify answers a request that arrives while it closes with `connection: close`, but not
  // one already in flight when the close began: that keep-alive connection then held the
  // close (and a collector's exit on SIGTERM) until the client's next request. Such a
  // response closes its connection too.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) reply.header('connection', 'close');
    return payload;
  });
  await app.register(collectorPlugin, options);
  // The typed instance is only needed while routes are declared; callers get the plain one.
  return app as unknown as FastifyInstance;
}

/** The collector as a plugin: parsers, error handling and every route (probe, admin, research, dashboard). */
export async function collectorPlugin(app: FastifyInstance, options: AppOptions): Promise<void> {
  const now = options.now ?? (() => new Date());
  const retention =
    options.retention ??
    new RetentionRunner(options.db, {
      eventRetentionDays: options.config.eventRetentionDays ?? 365,
      lookAlikeRetentionDays: options.config.lookAlikeRetentionDays ?? 30,
    });
  registerBodyParsers(app);
  registerErrorHandling(app);
  // First: it adds the metrics hooks and the OpenAPI collector, which only see routes
  // registered after them.
  await app.register(researchApi, {
    db: options.db,
    hashKey: options.config.hashKey,
    rateLimit: options.rateLimit,
    dashboardDir: options.dashboardDir,
    statementTimeoutMs: options.researchStatementTimeoutMs ?? options.config.researchStatementTimeoutMs,
    maxConcurrentExports: options.maxConcurrentExports ?? options.config.exportMaxConcurrent,
    exportTimeoutMs: options.exportTimeoutMs ?? options.config.exportTimeoutMs,
    exportStallMs: options.exportStallMs ?? options.config.exportStallMs,
    retentionTotals: retention.totals,
  });
  await app.register(healthRoutes, { db: options.db });
  // One count of refused requests per address, shared by the probe and admin APIs.
  const authFailures = new AuthFailureLimiter(options.config.hashKey, options.authFailureLimit);
  await app.register(probeRoutes, {
    prefix: '/probe/v1',
    db: options.db,
    hashKey: options.config.hashKey,
    checkinIntervalMs: options.config.checkinIntervalMs,
    now,
    rateLimit: options.probeRateLimit,
    authFailures,
    ...(options.onCheckin ? { onCheckin: options.onCheckin } : {}),
  });
  await app.register(adminRoutes, {
    prefix: '/admin/v1',
    db: options.db,
    adminToken: options.config.adminToken,
    hashKey: options.config.hashKey,
    now,
    rateLimit: options.adminRateLimit,
    authFailures,
    probeSilentAfterMs: options.config.probeSilentAfterMs,
    retention,
  });
}
