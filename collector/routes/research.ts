/**
 * The research side of the collector as one plugin: metrics (/metrics), the OpenAPI
 * document and docs (/docs, /docs/json), the research API (/api/v1, rate limited per
 * client) and the dashboard (/). Register it before the other routes so that metrics
 * and the OpenAPI document see them all.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { isDataException, sqlState } from '../db/errors.ts';
import type { Db } from '../db/open.ts';
import { exportSource } from '../db/research-export.ts';
import type { ErrorBody } from '../errors.ts';
import { dashboardPlugin } from '../http/dashboard.ts';
import { sendError, toErrorBody } from '../http/errors.ts';
import { openapiPlugin } from '../http/openapi.ts';
import { RateLimitedError, type RateLimitOptions, registerRateLimit } from '../http/rate-limit.ts';
import { metricsPlugin } from '../metrics.ts';
import type { RetentionTotals } from '../retention.ts';
import { researchAggregationRoutes } from './research-aggregation.ts';
import { researchExportRoutes } from './research-export.ts';
import { researchFindingRoutes } from './research-findings.ts';
import { researchOutcomeRoutes } from './research-outcomes.ts';
import { researchReader } from './research-query.ts';

export interface ResearchApiOptions {
  db: Db;
  /** The collector's hashing key: clients are rate limited by an HMAC of their address. */
  hashKey: Buffer;
  rateLimit?: RateLimitOptions | undefined;
  /** Built dashboard folder; default dashboard/dist. */
  dashboardDir?: string | undefined;
  /** Statement timeout of every research query (default 30 s; a Postgres server only). */
  statementTimeoutMs?: number | undefined;
  /** Exports streaming at once, across clients (default 4); one more answers 503 SD_ERR_BUSY. */
  maxConcurrentExports?: number | undefined;
  /** Statement timeout of an export's COPY on a server: the longest one export runs (default 1 h). */
  exportTimeoutMs?: number | undefined;
  /** An export whose client read nothing this long while the connection was full is cut (default 60 s). */
  exportStallMs?: number | undefined;
  /** This process's retention job totals, for /metrics (sd_events_pruned_total). */
  retentionTotals?: RetentionTotals | undefined;
}

/**
 * The error body of a research API request. Last line behind the query schemas: a value
 * they let through but Postgres refused (SQLSTATE class 22, e.g. an instant out of its
 * range) is the client's doing, 400 SD_ERR_QUERY_VALUE, not a 500.
 */
export function researchErrorBody(err: FastifyError | Error): ErrorBody {
  if (isDataException(err)) {
    return {
      statusCode: 400,
      code: 'SD_ERR_QUERY_VALUE',
      message: `querystring: a value the database cannot use (SQLSTATE ${sqlState(err)})`,
    };
  }
  return toErrorBody(err);
}

export const DEFAULT_RESEARCH_STATEMENT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_CONCURRENT_EXPORTS = 4;
export const DEFAULT_EXPORT_TIMEOUT_MS = 3_600_000;
export const DEFAULT_EXPORT_STALL_MS = 60_000;

/** /api/v1: rate limited; errors as { statusCode, code, message }, 429 as SD_ERR_RATE_LIMITED. */
async function apiV1(app: FastifyInstance, opts: ResearchApiOptions): Promise<void> {
  await registerRateLimit(app, opts.hashKey, opts.rateLimit);
  app.setErrorHandler((err: FastifyError | RateLimitedError, req, reply) => {
    if (err instanceof RateLimitedError) {
      return reply.status(429).send({ statusCode: 429, code: err.code, message: err.message });
    }
    const body = researchErrorBody(err);
    if (body.code === 'SD_ERR_QUERY_VALUE') {
      // The database's own words stay in the log (a 22xxx may also be a fault of the query).
      req.log.warn({ err }, 'query value refused by the database');
      return reply.status(body.statusCode).send(body);
    }
    return sendError(err, req, reply);
  });
  // The routes get no database handle: only `read`, which runs under the statement timeout.
  const statementTimeoutMs = opts.statementTimeoutMs ?? DEFAULT_RESEARCH_STATEMENT_TIMEOUT_MS;
  const read = researchReader(opts.db, statementTimeoutMs);
  await app.register(researchOutcomeRoutes, { read });
  // The export streams from the database (COPY on a server): the one route given a starter.
  const copyTimeoutMs = opts.exportTimeoutMs ?? DEFAULT_EXPORT_TIMEOUT_MS;
  await app.register(researchExportRoutes, {
    start: exportSource(opts.db, read, { firstLineTimeoutMs: statementTimeoutMs, copyTimeoutMs }),
    statementTimeoutMs,
    copyTimeoutMs,
    maxConcurrentExports: opts.maxConcurrentExports ?? DEFAULT_MAX_CONCURRENT_EXPORTS,
    stallMs: opts.exportStallMs ?? DEFAULT_EXPORT_STALL_MS,
  });
  await app.register(researchAggregationRoutes, { read });
  await app.register(researchFindingRoutes, { read });
}

export const researchApi = fp(
  async (app: FastifyInstance, opts: ResearchApiOptions) => {
    await app.register(metricsPlugin, { db: opts.db, retentionTotals: opts.retentionTotals });
    await app.register(openapiPlugin);
    await app.register(apiV1, { ...opts, prefix: '/api/v1' });
    await app.register(dashboardPlugin, { distDir: opts.dashboardDir });
  },
  { name: 'silentdrop-research-api', fastify: '5.x' },
);
