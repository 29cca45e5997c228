/**
 * The main thread's side of the PGlite worker (decision 013): an object with the part of
 * PGlite's interface drizzle's PGlite driver uses (`query`, `exec`, `transaction`), whose
 * calls are messages to `pglite-worker.js`, where PGlite and its WebAssembly run. A slow
 * query then blocks the worker, never the collector's event loop.
 *
 * Messages (structured clone; every request has an id, every reply names it):
 *   → { id, op: 'query', sql, params, rowMode, raw?, paramTypes?, tx? }   ← { id, ok, result | error }
 *   → { id, op: 'exec', sql, rowMode, tx? }
 *   → { id, op: 'begin' } ← txId;  → { id, op: 'commit' | 'rollback', tx }
 *   → { id, op: 'close' }          (PGlite closes and flushes its files; then the worker ends)
 * `raw` lists the type oids the caller keeps as text (drizzle's identity parsers; functions
 * cannot cross threads). Errors come back as their Postgres fields and are rebuilt as
 * PGlite's DatabaseError (code, detail, constraint, …), so callers see what they saw before.
 */
import { Worker } from 'node:worker_threads';
import { messages, type QueryOptions, type Results, type Transaction } from '@electric-sql/pglite';

/** Over this, a request (SQL + parameters) is refused before it is sent. */
export const MAX_REQUEST_BYTES = 64 * 1024 * 1024;
/** Over this, a result is refused in the worker (SQLSTATE 54000) instead of copied. */
export const MAX_RESULT_BYTES = 256 * 1024 * 1024;
/** A health check fails when the worker has been busy this long without finishing anything. */
export const STALL_MS = 60_000;

interface SerialisedError {
  message: string;
  name: string;
  database: boolean;
  fields: Record<string, unknown>;
}
type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: SerialisedError };

export interface PGliteWorkerOptions {
  /** A folder for PGlite's files; none: in memory. */
  dataDir?: string | undefined;
  maxResultBytes?: number;
}

function rebuildError(e: SerialisedError): Error {
  if (!e.database) {
    const err = new Error(e.message);
    err.name = e.name;
    return Object.assign(err, e.fields);
  }
  const err = new messages.DatabaseError(e.message, 0, 'error');
  return Object.assign(err, e.fields);
}

/** A size estimate of what structured clone copies (strings as UTF-16). */
function sizeOf(v: unknown, limit: number): number {
  let total = 0;
  const stack: unknown[] = [v];
  while (stack.length > 0) {
    const x = stack.pop();
    if (typeof x === 'string') total += 2 * x.length + 8;
    else if (x === null || typeof x !== 'object') total += 8;
    else if (ArrayBuffer.isView(x)) total += x.byteLength + 16;
    else if (Array.isArray(x)) {
      total += 8;
      for (const y of x) stack.push(y);
    } else if (!(x instanceof Date)) {
      total += 8;
      for (const [k, y] of Object.entries(x)) {
        total += 2 * k.length;
        stack.push(y);
      }
    } else total += 16;
    if (total > limit) return total;
  }
  return total;
}

/** Type oids whose parser is the identity, checked, not assumed: anything else cannot cross. */
const rawCache = new WeakMap<object, number[]>();
function rawTypes(parsers: QueryOptions['parsers']): number[] | undefined {
  if (!parsers) return undefined;
  let raw = rawCache.get(parsers);
  if (!raw) {
    raw = Object.entries(parsers).map(([oid, parse]) => {
      const probe = '\u0000probe';
      if (parse(probe, Number(oid)) !== probe) {
        throw new Error(`a custom parser for type ${oid} cannot run in the database thread`);
      }
      return Number(oid);
    });
    rawCache.set(parsers, raw);
  }
  return raw;
}

export class PGliteWorkerClient {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #nextId = 1;
  #dead: Error | undefined;
  #closing: Promise<void> | undefined;
  /** When the worker last finished something, or became busy after being idle. */
  #progressAt = Date.now();
  #openTransactions = 0;
  #reffed = true;
  readonly ready: Promise<void>;

  private constructor(options: PGliteWorkerOptions) {
    this.#worker = new Worker(new URL('./pglite-worker.js', import.meta.url), {
      workerData: {
        dataDir: options.dataDir ?? null,
        maxResultBytes: options.maxResultBytes ?? MAX_RESULT_BYTES,
      },
    });
    this.ready = new Promise<void>((resolve, reject) => {
      this.#pending.set(0, { resolve: () => resolve(), reject });
    });
    this.#worker.on('message', (reply: Reply) => {
      const waiter = this.#pending.get(reply.id);
      if (!waiter) return;
      this.#pending.delete(reply.id);
      this.#progressAt = Date.now();
      this.#refWhileBusy();
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(rebuildError(reply.error));
    });
    const fail = (err: Error) => {
      this.#dead ??= err;
      for (const w of this.#pending.values()) w.reject(err);
      this.#pending.clear();
    };
    this.#worker.on('error', (err) => fail(new Error(`the database thread failed: ${err.message}`)));
    this.#worker.on('exit', (code) => fail(new Error(`the database thread ended (exit code ${code})`)));
  }

  /** Starts the worker and waits until PGlite is ready (its files opened or created). */
  static async start(options: PGliteWorkerOptions = {}): Promise<PGliteWorkerClient> {
    const client = new PGliteWorkerClient(options);
    try {
      await client.ready;
    } catch (err) {
      await client.#worker.terminate();
      throw err;
    }
    return client;
  }

  /** The thread keeps the process alive only while something waits for it (like a socket). */
  #refWhileBusy(): void {
    const busy = this.#pending.size > 0 || this.#openTransactions > 0;
    if (busy === this.#reffed) return;
    this.#reffed = busy;
    if (busy) this.#worker.ref();
    else this.#worker.unref();
  }

  #request(message: Record<string, unknown>): Promise<unknown> {
    if (this.#dead) return Promise.reject(this.#dead);
    // While closing, open transactions may still finish (PGlite's close waits for them).
    if (this.#closing && message.op !== 'close' && message.tx === undefined) {
      return Promise.reject(new Error('the database is closed'));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      if (this.#pending.size === 0 && this.#openTransactions === 0) this.#progressAt = Date.now();
      this.#pending.set(id, { resolve, reject });
      this.#refWhileBusy();
      try {
        this.#worker.postMessage({ ...message, id });
      } catch (err) {
        // A parameter structured clone cannot copy (a function, a class instance with private state).
        this.#pending.delete(id);
        reject(err as Error);
      }
    });
  }

  #queryMessage(sql: string, params: unknown[] | undefined, options: QueryOptions | undefined, tx?: number) {
    if (options?.serializers || options?.blob || options?.onNotice) {
      throw new Error('serializers, blobs and notice callbacks cannot cross to the database thread');
    }
    const size = sizeOf([sql, params ?? []], MAX_REQUEST_BYTES);
    if (size > MAX_REQUEST_BYTES) {
      throw new Error(`a query of about ${size} bytes is over the ${MAX_REQUEST_BYTES}-byte request limit`);
    }
    return {
      op: 'query',
      sql,
      params: params ?? [],
      rowMode: options?.rowMode ?? 'object',
      raw: rawTypes(options?.parsers),
      ...(options?.paramTypes ? { paramTypes: options.paramTypes } : {}),
      ...(tx ? { tx } : {}),
    };
  }

  async query<T>(sql: string, params?: unknown[], options?: QueryOptions, tx?: number): Promise<Results<T>> {
    try {
      return (await this.#request(this.#queryMessage(sql, params, options, tx))) as Results<T>;
    } catch (err) {
      // As PGlite does: a database error names its statement.
      if (err instanceof messages.DatabaseError)
        Object.assign(err, { query: sql, params, queryOptions: options });
      throw err;
    }
  }

  async exec(sql: string, options?: QueryOptions, tx?: number): Promise<Results[]> {
    const size = sizeOf(sql, MAX_REQUEST_BYTES);
    if (size > MAX_REQUEST_BYTES) throw new Error(`SQL of about ${size} bytes is over the request limit`);
    return (await this.#request({
      op: 'exec',
      sql,
      rowMode: options?.rowMode ?? 'object',
      ...(tx ? { tx } : {}),
    })) as Results[];
  }

  /**
   * PGlite's interactive transaction: BEGIN in the worker, the callback's queries on the
   * same connection, COMMIT when it returns, ROLLBACK when it throws. Until then every
   * other caller's query waits in the worker, so two callers never interleave inside one.
   */
  async transaction<T>(callback: (tx: Transaction) => Promise<T>): Promise<T> {
    const txId = (await this.#request({ op: 'begin' })) as number;
    this.#openTransactions++;
    let closed = false;
    const end = async (op: 'commit' | 'rollback') => {
      closed = true;
      try {
        await this.#request({ op, tx: txId });
      } finally {
        this.#openTransactions--;
        this.#refWhileBusy();
      }
    };
    const checkClosed = () => {
      if (closed) throw new Error('Transaction is closed');
    };
    const tx = {
      query: async <R>(sql: string, params?: unknown[], options?: QueryOptions) => {
        checkClosed();
        return this.query<R>(sql, params, options, txId);
      },
      sql: async () => {
        throw new Error('tagged-template queries are not supported through the database thread');
      },
      exec: async (sql: string, options?: QueryOptions) => {
        checkClosed();
        return this.exec(sql, options, txId);
      },
      rollback: async () => {
        checkClosed();
        await end('rollback');
      },
      listen: async () => {
        throw new Error('LISTEN is not supported through the database thread');
      },
      get closed() {
        return closed;
      },
    } as unknown as Transaction;
    let result: T;
    try {
      result = await callback(tx);
    } catch (err) {
      if (!closed) await end('rollback').catch(() => {});
      throw err;
    }
    if (!closed) await end('commit');
    return result;
  }

  /**
   * For health checks: resolves when the database thread is alive and either idle (then a
   * `select 1` answers) or making progress; a query queued behind a long sweep would make
   * a healthy collector look dead.
   */
  async health(stallMs = STALL_MS): Promise<void> {
    if (this.#dead) throw this.#dead;
    if (this.#closing) throw new Error('the database is closed');
    if (this.#pending.size === 0 && this.#openTransactions === 0) {
      await this.query('select 1');
      return;
    }
    const quiet = Date.now() - this.#progressAt;
    if (quiet > stallMs) throw new Error(`the database thread has not finished anything for ${quiet} ms`);
  }

  /** Waits for every request sent so far, closes PGlite (which flushes its files) and ends the worker. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#dead) return;
      // PGlite's close does not wait for queries in flight: let them finish first.
      while (this.#pending.size > 0 && !this.#dead) await new Promise((r) => setTimeout(r, 5));
      if (this.#dead) return;
      try {
        await this.#request({ op: 'close' });
      } finally {
        await this.#worker.terminate();
      }
    })();
    return this.#closing;
  }
}
