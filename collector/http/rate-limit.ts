/**
 * Per-client rate limiting of the research, probe and admin APIs (refused requests have their
 * own count: auth-failures.ts). A research or admin client is known
 * only by an HMAC of its address under the collector's hashing key: the address itself is
 * never stored, used as a key or logged. A probe is known by its id once its request's
 * signature is verified (so one probe cannot use up another's quota, and probes sharing an
 * address each have their own); enrollment, before a probe has an id, by the address HMAC. Every answer carries x-ratelimit-limit/-remaining/-reset;
 * past the quota the answer is 429 SD_ERR_RATE_LIMITED with retry-after.
 *
 * The store is in memory, per collector process: behind a load balancer each collector
 * counts on its own (a shared store would be needed for one global quota).
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SdError } from '../errors.ts';
import { keyedHash } from '../secrets.ts';

export interface RateLimitOptions {
  /** Requests per client per window. */
  max: number;
  timeWindowMs: number;
}

export const DEFAULT_RATE_LIMIT: RateLimitOptions = { max: 600, timeWindowMs: 60_000 };

/**
 * Per probe: a probe checks in and uploads a batch of events every few seconds at most; 1,200 a
 * minute (20 a second) leaves room for catching up after an outage and stops a runaway loop.
 */
export const DEFAULT_PROBE_RATE_LIMIT: RateLimitOptions = { max: 1200, timeWindowMs: 60_000 };

export class RateLimitedError extends SdError {
  constructor(message: string) {
    super('SD_ERR_RATE_LIMITED', message);
  }
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
  by: 'client' | 'probe' = 'client',
): Promise<void> {
  await app.register(rateLimit, {
    global: true,
    max: options.max,
    timeWindow: options.timeWindowMs,
    // probes: after the signature check (preValidation), so the key is a verified probe id
    ...(by === 'probe' ? { hook: 'preHandler' as const } : {}),
    keyGenerator: (req) => {
      const probeId = by === 'probe' ? req.probeAuth?.probeId : undefined;
      return probeId ? `probe:${probeId}` : clientKey(hashKey, req);
    },
    errorResponseBuilder: (_req, ctx) =>
      new RateLimitedError(`rate limit: at most ${ctx.max} requests per client in ${ctx.after}; retry later`),
  });
}
