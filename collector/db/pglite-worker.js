// @ts-check
/**
 * The worker thread that owns the collector's embedded PGlite (decision 013). Plain
 * JavaScript so Node loads it without tsx's hooks, which worker threads do not inherit.
 * The main thread talks to it through `PGliteWorkerClient` (pglite-client.ts); the
 * message shapes are described there.
 *
 * Requests run as they arrive; PGlite's own mutexes serialise them. A transaction is
 * PGlite's `transaction()` held open across messages: its callback waits for `commit` or
 * `rollback`, and meanwhile every query outside it waits on PGlite's transaction mutex,
 * exactly as on the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

if (!parentPort) throw new Error('pglite-worker.js runs as a worker thread');
const port = parentPort;

/** @type {{ dataDir: string | null; maxResultBytes: number }} */
const options = workerData;

/** Error fields of Postgres' ErrorResponse (pg-protocol's DatabaseError) that are copied back. */
const ERROR_FIELDS = [
  'severity',
  'code',
  'detail',
  'hint',
  'position',
  'internalPosition',
  'internalQuery',
  'where',
  'schema',
  'table',
  'column',
  'dataType',
  'constraint',
  'file',
  'line',
  'routine',
];

/**
 * Emscripten's file-system errors (PGlite's `ErrnoError`) are thrown as plain objects with a
 * WASI errno and no message; the names of the ones an operator meets opening a data folder.
 */
const ERRNO_NAMES = /** @type {Record<number, string>} */ ({
  2: 'EACCES: permission denied',
  20: 'EEXIST: file exists',
  31: 'EISDIR: is a directory',
  44: 'ENOENT: no such file or directory',
  51: 'ENOSPC: no space left on device',
  54: 'ENOTDIR: not a directory',
  63: 'EPERM: operation not permitted',
  69: 'EROFS: read-only file system',
});

/**
 * What a thrown value says, for a value that is not an Error: its message, else an Emscripten
 * errno named, else its fields as JSON (bounded), never "[object Object]".
 * @param {unknown} err
 */
function describeThrown(err) {
  if (typeof err !== 'object' || err === null) return String(err);
  const o = /** @type {Record<string, unknown>} */ (err);
  if (typeof o.message === 'string' && o.message !== '') return o.message;
  const name = typeof o.name === 'string' ? o.name : (o.constructor?.name ?? 'error');
  if (typeof o.errno === 'number')
    return `${name} ${ERRNO_NAMES[o.errno] ?? `errno ${o.errno}`} (in PGlite's file system)`;
  let json = '';
  try {
    json = JSON.stringify(o) ?? '';
  } catch {
    // a cycle: the name is all there is to say
  }
  return json && json !== '{}' ? `${name} ${json.slice(0, 500)}` : name;
}

/** @param {unknown} err */
function serialiseError(err) {
  const e = /** @type {Record<string, unknown>} */ (
    err instanceof Error ? err : { message: describeThrown(err) }
  );
  /** @type {Record<string, unknown>} */
  const fields = {};
  for (const k of ERROR_FIELDS) if (e[k] !== undefined) fields[k] = e[k];
  return {
    message: String(e.message),
    name: typeof e.name === 'string' ? e.name : 'Error',
    database: e.code !== undefined && typeof e.severity === 'string',
    fields,
  };
}

/** A size estimate of a result as structured clone copies it (strings as UTF-16). */
function sizeOf(/** @type {unknown} */ v, /** @type {number} */ limit) {
  let total = 0;
  /** @type {unknown[]} */
  const stack = [v];
  while (stack.length > 0) {
    const x = stack.pop();
    if (typeof x === 'string') total += 2 * x.length + 8;
    else if (x === null || typeof x !== 'object') total += 8;
    else if (ArrayBuffer.isView(x)) total += x.byteLength + 16;
    else if (x instanceof Date) total += 16;
    else if (Array.isArray(x)) {
      total += 8;
      for (const y of x) stack.push(y);
    } else {
      total += 8;
      for (const [k, y] of Object.entries(x)) {
        total += 2 * k.length;
        stack.push(y);
      }
    }
    if (total > limit) return total;
  }
  return total;
}

/** @param {any} result */
function checkSize(result) {
  const size = sizeOf(result.rows, options.maxResultBytes);
  if (size > options.maxResultBytes) {
    const err = new Error(
      `result of about ${size} bytes is over the ${options.maxResultBytes}-byte limit between the database thread and the collector`,
    );
    Object.assign(err, { code: '54000', severity: 'ERROR' });
    throw err;
  }
  return result;
}

/** Identity parsers for the type oids the caller keeps as text (drizzle's dates, intervals, numeric[]). */
const parsersCache = new Map();
/** @param {number[] | undefined} raw */
function parsersFor(raw) {
  if (!raw || raw.length === 0) return undefined;
  const key = raw.join(',');
  let parsers = parsersCache.get(key);
  if (!parsers) {
    parsers = Object.fromEntries(raw.map((oid) => [oid, (/** @type {string} */ v) => v]));
    parsersCache.set(key, parsers);
  }
  return parsers;
}

const db = options.dataDir ? new PGlite(options.dataDir) : new PGlite();

/** Open transactions: id → PGlite's transaction handle and how to end it. */
const transactions = new Map();
let nextTx = 1;
const ROLLBACK = Symbol('rollback');

/** @param {any} m */
async function handle(m) {
  switch (m.op) {
    case 'query': {
      const target = m.tx ? transactions.get(m.tx)?.tx : db;
      if (!target) throw new Error('Transaction is closed');
      const result = await target.query(m.sql, m.params, {
        rowMode: m.rowMode,
        ...(m.raw ? { parsers: parsersFor(m.raw) } : {}),
        ...(m.paramTypes ? { paramTypes: m.paramTypes } : {}),
      });
      return checkSize({ rows: result.rows, fields: result.fields, affectedRows: result.affectedRows });
    }
    case 'exec': {
      const target = m.tx ? transactions.get(m.tx)?.tx : db;
      if (!target) throw new Error('Transaction is closed');
      const results = await target.exec(m.sql, { rowMode: m.rowMode });
      return results.map((/** @type {any} */ r) =>
        checkSize({ rows: r.rows, fields: r.fields, affectedRows: r.affectedRows }),
      );
    }
    case 'begin': {
      const id = nextTx++;
      return await new Promise((started, failed) => {
        /** @type {{ tx: any; end: (how: 'commit' | typeof ROLLBACK) => Promise<void> }} */
        const entry = { tx: null, end: async () => {} };
        const done = db
          .transaction(
            (tx) =>
              new Promise((commit, rollback) => {
                entry.tx = tx;
                entry.end = (how) => {
                  if (how === ROLLBACK) rollback(ROLLBACK);
                  else commit(undefined);
                  return done;
                };
                transactions.set(id, entry);
                started(id);
              }),
          )
          .catch((/** @type {unknown} */ err) => {
            if (err !== ROLLBACK) throw err;
          })
          .finally(() => transactions.delete(id));
        // BEGIN itself failed: the callback never ran.
        done.catch(failed);
      });
    }
    case 'commit':
    case 'rollback': {
      const entry = transactions.get(m.tx);
      if (!entry) throw new Error('Transaction is closed');
      await entry.end(m.op === 'commit' ? 'commit' : ROLLBACK);
      return null;
    }
    case 'ping':
      return null;
    case 'close': {
      await db.close();
      return null;
    }
    default:
      throw new Error(`unknown request ${String(m.op)}`);
  }
}

port.on('message', (/** @type {any} */ m) => {
  handle(m).then(
    (result) => port.postMessage({ id: m.id, ok: true, result }),
    (err) => port.postMessage({ id: m.id, ok: false, error: serialiseError(err) }),
  );
});

try {
  await db.waitReady;
  port.postMessage({ id: 0, ok: true, result: 'ready' });
} catch (err) {
  port.postMessage({ id: 0, ok: false, error: serialiseError(err) });
}
