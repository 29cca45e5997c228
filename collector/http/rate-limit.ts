/**
 * Per-client rate limiting of the research API. A client is known only by an HMAC of
 * its address under the collector's hashing key: the address itself is never stored,
 * used as a key or logged. Every answer carries x-ratelimit-limit/-remaining/-reset;
 * past the quota the answer is 429 SD_ERR_RATE_LIMITED with retry-after.
 *
 * The store is in memory, per collector process: behind a load balancer each collector
 * counts on its own (a shared store would be needed for one global quota).
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { keyedHash } from '../secrets.ts';

export interface RateLimitOptions {
  /** Requests per client per window. */
  max: number;
  timeWindowMs: number;
}

export const DEFAULT_RATE_LIMIT: RateLimitOptions = { max: 600, timeWindowMs: 60_000 };

export class RateLimitedError extends Error {
  readonly statusCode = 429;
  readonly code = 'SD_ERR_RATE_LIMITED';
}

/** The only client identity the limiter sees. */
export function clientKey(hashKey: Buffer, req: Pick<FastifyRequest, 'ip'>): string {
  return keyedHash(hashKey, `rate-limit:${req.ip}`);
}

/** Applies to every route of the (encapsulated) instance it is registered on. */
export async function registerRateLimit(
  app: FastifyInstance,
  hashKey: Buffer,
  options: RateLimitOptions = DEFAULT_RATE_LIMIT,
): Promise<void> {
  await app.register(rateLimit, {
    global: true,
    max: options.max,
    timeWindow: options.timeWindowMs,
    keyGenerator: (req) => clientKey(hashKey, req),
    errorResponseBuilder: (_req, ctx) =>
      new RateLimitedError(`rate limit: at most ${ctx.max} requests per client in ${ctx.after}; retry later`),
  });
}
