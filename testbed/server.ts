/**
 * `startTestbed`: the testbed platform as a running HTTP server (API, SSE stream and
 * web client) on an in-memory state. Listens on 127.0.0.1 and an ephemeral port by
 * default; `close()` ends streams, cancels pending deliveries and stops listening.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyError, LogController } from 'fastify';
import { type Logger, pino } from 'pino';
import { ApiError, api } from './api.ts';
import { type Clock, systemClock } from './clock.ts';
import { Dispatcher } from './delivery.ts';
import { loadState, StateSaver } from './persist.ts';
import { type Policy, resolvePolicy } from './policy.ts';
import { createRng } from './random.ts';
import { DEFAULT_RATE_LIMIT, RateLimiter, type RateLimitOptions } from './rate-limit.ts';
import { SseHub } from './sse.ts';
import { type HistoryLimits, Store } from './store.ts';

const webRoot = join(dirname(fileURLToPath(import.meta.url)), 'web');

export type PolicyInput = string | Policy | Record<string, unknown>;

export interface TestbedOptions {
  /** A policy file path, a Policy from loadPolicyFile/parsePolicy, or a plain object in the file format. */
  policy: PolicyInput;
  port?: number;
  host?: string;
  /** Seed for every random draw (probabilities, loss, latency): same seed and inputs, same fates. */
  seed?: number;
  clock?: Clock;
  logger?: Logger;
  /** Per-account limit on sends and conversation creation; `false` turns it off. */
  rateLimit?: RateLimitOptions | false;
  /** SSE keep-alive comment interval (default 15 s). */
  pingIntervalMs?: number;
  /**
   * Keep accounts, tokens, conversations and message timelines in this JSON file: read
   * at start when it exists, written (atomically) shortly after each change and on
   * close. Without it, state lives in memory only. Deliveries still pending at close
   * (delay rules, latency) are not kept: they are lost, as in an outage.
   */
  stateFile?: string;
  /** How much of each account's timeline is kept (store.ts DEFAULT_HISTORY: 6 hours, 50,000 entries). */
  history?: Partial<HistoryLimits>;
}

export interface Testbed {
  /** `http://host:port`, no trailing slash. */
  url: string;
  port: number;
  /** Swap the policy (validated first; a bad one throws PolicyError and the old one stays). */
  reloadPolicy(policy: PolicyInput): Policy;
  policy(): Policy;
  close(): Promise<void>;
}

export async function startTestbed(options: TestbedOptions): Promise<Testbed> {
  let policy = resolvePolicy(options.policy);
  const clock = options.clock ?? systemClock;
  const log = options.logger ?? pino({ level: 'silent' });
  const storeOptions = { now: () => clock.now(), ...(options.history ? { history: options.history } : {}) };
  const store = options.stateFile ? loadState(options.stateFile, storeOptions) : new Store(storeOptions);
  const saver = options.stateFile ? new StateSaver(options.stateFile, store, log) : undefined;
  const dispatcher = new Dispatcher(store, () => policy, clock, createRng(options.seed), log);
  const hub = new SseHub(store, options.pingIntervalMs ?? 15_000);
  const rateLimit = options.rateLimit === undefined ? DEFAULT_RATE_LIMIT : options.rateLimit;

  const app = Fastify({
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 256 * 1024,
    forceCloseConnections: true,
  });
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    if (err instanceof ApiError) {
      if (err.retryAfterS !== undefined) void reply.header('retry-after', String(err.retryAfterS));
      return reply.code(err.statusCode).send({ error: err.error, message: err.message });
    }
    if (err.validation) return reply.code(400).send({ error: 'bad_request', message: err.message });
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return reply.code(status).send({ error: 'bad_request', message: err.message });
    }
    req.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error' });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` }),
  );
  app.addHook('onSend', async (_req, reply) => {
    reply.header('content-security-policy', "default-src 'self'; object-src 'none'; base-uri 'none'");
    reply.header('x-content-type-options', 'nosniff');
  });

  await app.register(fastifyStatic, { root: webRoot, prefix: '/', index: 'index.html' });
  await app.register(api, {
    store,
    policy: () => policy,
    dispatcher,
    hub,
    ...(rateLimit ? { rateLimiter: new RateLimiter(rateLimit, clock) } : {}),
  });

  try {
    await app.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
  } catch (err) {
    await saver?.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0);
  const host = options.host ?? '127.0.0.1';
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  log.info({ policy: policy.source, rules: policy.rules.length, port }, 'testbed listening');

  let closed = false;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    policy: () => policy,
    reloadPolicy(input) {
      policy = resolvePolicy(input);
      log.info({ policy: policy.source, rules: policy.rules.length }, 'policy reloaded');
      return policy;
    },
    async close() {
      if (closed) return;
      closed = true;
      dispatcher.close();
      hub.closeAll();
      await app.close();
      await saver?.close();
    },
  };
}
