/**
 * A Postgres server that stops answering without closing its connections (the network
 * between drops packets, a host vanished) must not hold the collector's requests, nor its
 * shutdown. A query on such a connection waits for ever: TCP keep-alive takes minutes to
 * notice, a client-side query timeout short enough to fail fast would also cut research
 * reads that may take 30 s (research-timeout.ts).
 *
 * So the pool is watched: while a connection has been in use for `everyMs` or longer (or
 * requests wait for one), every `everyMs` a fresh connection asks the server `select 1`
 * within `timeoutMs`. When that fails, the server is
 * not reachable now, and every pooled connection is cut: the queries on them fail at once
 * ("Connection terminated", answered 503 with a retry hint, http/errors.ts), and the pool
 * opens new connections when asked (they fail within the connection timeout until the
 * server is back). A slow query on a reachable server is never cut: the check succeeds.
 *
 * `endPool` closes the pool within a bound: `pool.end()` ends each connection politely and
 * waits for the server's goodbye, which a silent server never sends.
 */
import type { Socket } from 'node:net';
import pg from 'pg';

export interface PoolWatch {
  stop(): void;
}

/** The socket of a pooled client (pg's own pool destroys it the same way). */
function socketOf(client: pg.PoolClient | pg.Client): Socket | undefined {
  return (client as unknown as { connection?: { stream?: Socket } }).connection?.stream;
}

/**
 * Every client the pool holds, in use or idle (pg-pool's `connect`/`remove` events). Each gets
 * an `error` listener for good: pg-pool listens only while a client is idle, and a connection
 * lost under a transaction (drizzle holds the client) would otherwise be an unhandled `error`
 * event that ends the process. Its queries fail either way.
 */
export function trackClients(pool: pg.Pool, onError: (err: Error) => void): Set<pg.PoolClient> {
  const clients = new Set<pg.PoolClient>();
  pool.on('connect', (c) => {
    clients.add(c);
    c.on('error', onError);
  });
  pool.on('remove', (c) => clients.delete(c as pg.PoolClient));
  return clients;
}

/**
 * Asks the server for `select 1` on a new connection; true when it answered within `timeoutMs`,
 * also with an error (too many connections, starting up): then it is there, only busy.
 */
export async function serverAnswers(url: string, timeoutMs: number): Promise<boolean> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
  });
  client.on('error', () => {});
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs + 500);
  });
  const asked = (async () => {
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
    }
  })();
  const answered = await Promise.race([asked, gaveUp]);
  clearTimeout(timer);
  // Never wait for a silent server's goodbye.
  socketOf(client)?.destroy();
  return answered;
}

export function watchPool(
  pool: pg.Pool,
  clients: ReadonlySet<pg.PoolClient>,
  url: string,
  options: { everyMs: number; timeoutMs: number; onUnreachable?: (cut: number) => void },
): PoolWatch {
  // When each client in use was taken: a check is due only while one has been out for a while
  // (a healthy collector's queries come back well within `everyMs`), or requests wait for one.
  const inUseSince = new Map<pg.PoolClient, number>();
  pool.on('acquire', (c) => inUseSince.set(c, Date.now()));
  pool.on('release', (_err, c) => inUseSince.delete(c as pg.PoolClient));
  pool.on('remove', (c) => inUseSince.delete(c as pg.PoolClient));
  let checking = false;
  const timer = setInterval(() => {
    const now = Date.now();
    const held = [...inUseSince.values()].some((since) => now - since >= options.everyMs);
    if (checking || (!held && pool.waitingCount === 0)) return;
    checking = true;
    void serverAnswers(url, options.timeoutMs)
      .then((ok) => {
        if (ok) return;
        let cut = 0;
        for (const c of clients) {
          socketOf(c)?.destroy();
          cut++;
        }
        options.onUnreachable?.(cut);
      })
      .finally(() => {
        checking = false;
      });
  }, options.everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** `pool.end()`, but after `graceMs` the connections still open are cut instead of waited for. */
export async function endPool(pool: pg.Pool, clients: ReadonlySet<pg.PoolClient>, graceMs: number) {
  const ended = pool.end();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), graceMs);
  });
  const first = await Promise.race([ended.then(() => 'ended' as const), late]);
  clearTimeout(timer);
  if (first === 'ended') return;
  for (const c of clients) socketOf(c)?.destroy();
  await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
}
