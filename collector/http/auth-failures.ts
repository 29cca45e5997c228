/**
 * Trust costs nothing before it is earned: every refused (401/403) request to the probe
 * or admin API counts against its sender, known only by an HMAC of its address under
 * the collector's hashing key (http/rate-limit.ts clientKey; the address is never stored
 * or logged). Past `max` refusals in a window, every request from that address answers
 * 429 SD_ERR_RATE_LIMITED with retry-after, in the first onRequest hook: before its
 * headers are checked, its probe looked up or its body read.
 *
 * One limiter per app, shared by the probe and admin scopes; in memory, per collector
 * process, and bounded (at most `maxClients` addresses tracked; a flood of fresh
 * addresses evicts the oldest entries, never grows the heap).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { clientKey, RateLimitedError, type RateLimitOptions } from './rate-limit.ts';

/** 60 refusals a minute: a misconfigured probe retrying every second still gets through its errors. */
export const DEFAULT_AUTH_FAILURE_LIMIT: RateLimitOptions = { max: 60, timeWindowMs: 60_000 };

const MAX_CLIENTS = 100_000;

interface Window {
  count: number;
  resetAt: number;
}

export class AuthFailureLimiter {
  readonly #windows = new Map<string, Window>();
  readonly #hashKey: Buffer;
  readonly #options: RateLimitOptions;
  readonly #clock: () => number;
  readonly #maxClients: number;

  constructor(
    hashKey: Buffer,
    options: RateLimitOptions = DEFAULT_AUTH_FAILURE_LIMIT,
    clock: () => number = Date.now,
    maxClients = MAX_CLIENTS,
  ) {
    this.#hashKey = hashKey;
    this.#options = options;
    this.#clock = clock;
    this.#maxClients = maxClients;
  }

  /** Addresses currently tracked (tests, metrics). */
  get size(): number {
    return this.#windows.size;
  }

  #current(key: string): Window | undefined {
    const w = this.#windows.get(key);
    if (w && w.resetAt <= this.#clock()) {
      this.#windows.delete(key);
      return undefined;
    }
    return w;
  }

  /** Seconds until the address may try again, or 0 when it may now. */
  retryAfterSeconds(req: Pick<FastifyRequest, 'ip'>): number {
    const w = this.#current(clientKey(this.#hashKey, req));
    if (!w || w.count < this.#options.max) return 0;
    return Math.max(1, Math.ceil((w.resetAt - this.#clock()) / 1000));
  }

  record(req: Pick<FastifyRequest, 'ip'>): void {
    const key = clientKey(this.#hashKey, req);
    const w = this.#current(key);
    if (w) {
      w.count++;
      return;
    }
    if (this.#windows.size >= this.#maxClients) this.#evict();
    this.#windows.set(key, { count: 1, resetAt: this.#clock() + this.#options.timeWindowMs });
  }

  #evict(): void {
    const now = this.#clock();
    for (const [key, w] of this.#windows) if (w.resetAt <= now) this.#windows.delete(key);
    // Still full: drop the oldest entries (Map keeps insertion order).
    for (const key of this.#windows.keys()) {
      if (this.#windows.size < this.#maxClients) break;
      this.#windows.delete(key);
    }
  }

  /** Adds the check (onRequest) and the count (onResponse) to every route of `app`'s scope. */
  register(app: FastifyInstance): void {
    app.addHook('onRequest', async (req, reply) => {
      const wait = this.retryAfterSeconds(req);
      if (wait === 0) return;
      reply.header('retry-after', String(wait));
      throw new RateLimitedError(
        `rate limit: more than ${this.#options.max} refused requests from this client in ` +
          `${this.#options.timeWindowMs / 1000} s; retry in ${wait} s`,
      );
    });
    app.addHook('onResponse', async (req, reply) => {
      if (reply.statusCode === 401 || reply.statusCode === 403) this.record(req);
    });
  }
}
