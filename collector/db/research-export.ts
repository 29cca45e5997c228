/**
 * The bulk export of outcomes (GET /api/v1/export), decision 026. Every line is built by
 * Postgres, in SQL, so the collector only moves bytes:
 *
 * - on a Postgres server, one `COPY (select line …) TO STDOUT (format binary)` on a
 *   connection of its own, streamed to the socket with backpressure (pg-copy-streams);
 *   the binary framing (a 6-byte prefix per row) is stripped in `CopyBinaryLines`;
 * - on PGlite (one connection, in a worker thread, no COPY to a socket), windows of the
 *   send-time key, each one short read, so other requests run between them.
 *
 * `exportLine` is the SQL twin of the route's records: `outcomeRecord` then
 * `JSON.stringify` (NDJSON) or `csvLine(OUTCOME_COLUMNS…)` (CSV), byte for byte
 * (research-export.test.ts compares them on hostile text). Rows come in the order of the
 * outcome pages (research-outcomes.ts): send time, canary id, recipient id. That order walks
 * the index canaries (send_at, id), so an export narrowed by `from`/`to` reads only its
 * window, however long the table (decision 026, amendment). Sealing is OUTCOME_FROM's, as
 * for every research read.
 */
import type { Socket } from 'node:net';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { type SQL, sql } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Db, Queryable } from './open.ts';
import { rows } from './open.ts';
import { sameDeadline } from './partitions.ts';
import {
  isoMicros,
  isoMillis,
  OUTCOME_FROM,
  type OutcomeFilter,
  outcomeConditions,
  sendTimeConditions,
  unsealed,
  whereClause,
} from './research-filters.ts';

export type ExportFormat = 'ndjson' | 'csv';

/** A text cell as csvField writes it: formula starts defused with `'`, quoted when needed. */
const csvQuoted = (v: SQL) =>
  sql`(case when strpos(${v}, '"') > 0 or strpos(${v}, ',') > 0 or strpos(${v}, chr(13)) > 0
      or strpos(${v}, chr(10)) > 0 then '"' || replace(${v}, '"', '""') || '"' else ${v} end)`;
const csvText = (v: SQL) =>
  sql`coalesce(${csvQuoted(sql`(case when left(${v}, 1) in ('=', '+', '-', '@', chr(9), chr(13)) then '''' || ${v} else ${v} end)`)}, '')`;
/** Ids and instants this module formats itself: never a comma, quote, line break or formula start. */
const csvPlain = (v: SQL) => sql`coalesce((${v})::text, '')`;

const TERM_SET = unsealed(sql`c.term_set`);

/**
 * The columns of an outcome record, in `outcomeRecord`'s key order (the select of
 * readOutcomes, then `terms_key`), each with its kind for CSV.
 */
const COLUMNS: { name: string; value: SQL; csv: 'text' | 'plain' | 'array' }[] = [
  { name: 'canary_id', value: sql`c.id`, csv: 'plain' },
  { name: 'recipient_account_id', value: sql`o.recipient_account_id`, csv: 'plain' },
  { name: 'campaign_id', value: sql`c.campaign_id`, csv: 'plain' },
  { name: 'platform', value: sql`cv.platform`, csv: 'text' },
  { name: 'kind', value: sql`c.kind`, csv: 'text' },
  { name: 'pair_id', value: sql`c.pair_id`, csv: 'plain' },
  { name: 'term_set', value: TERM_SET, csv: 'array' },
  { name: 'text', value: unsealed(sql`c.text`), csv: 'text' },
  { name: 'status', value: sql`o.status`, csv: 'text' },
  { name: 'send_at', value: isoMillis(sql`c.send_at`), csv: 'plain' },
  { name: 'deadline_at', value: isoMillis(sql`o.deadline_at`), csv: 'plain' },
  { name: 'received_at', value: isoMillis(sql`o.received_at`), csv: 'plain' },
  { name: 'latency_ms', value: sql`o.latency_ms`, csv: 'plain' },
  { name: 'received_text', value: unsealed(sql`o.received_text`), csv: 'text' },
  { name: 'failure', value: sql`o.failure`, csv: 'text' },
  { name: 'notice', value: sql`o.notice`, csv: 'text' },
  { name: 'conversation_id', value: sql`c.conversation_id`, csv: 'plain' },
  { name: 'conversation_kind', value: sql`cv.kind`, csv: 'text' },
  { name: 'sender_account_id', value: sql`c.sender_account_id`, csv: 'plain' },
  { name: 'sender_region', value: sql`s.region`, csv: 'text' },
  { name: 'sender_probe_id', value: sql`s.probe_id`, csv: 'plain' },
  { name: 'recipient_region', value: sql`r.region`, csv: 'text' },
  { name: 'recipient_probe_id', value: sql`r.probe_id`, csv: 'plain' },
  { name: 'data_format_version', value: sql`o.data_format_version`, csv: 'plain' },
  { name: 'updated_at', value: isoMillis(sql`o.updated_at`), csv: 'plain' },
  // JSON.stringify(term_set) as a string; array_to_json writes no spaces, like JSON.stringify.
  { name: 'terms_key', value: sql`array_to_json(${TERM_SET})::text`, csv: 'text' },
];

/** The CSV column order (protocol/research.ts OUTCOME_COLUMNS; the test checks they agree). */
export const EXPORT_CSV_COLUMNS = [
  'canary_id',
  'recipient_account_id',
  'campaign_id',
  'platform',
  'kind',
  'pair_id',
  'term_set',
  'terms_key',
  'text',
  'status',
  'send_at',
  'deadline_at',
  'received_at',
  'latency_ms',
  'received_text',
  'failure',
  'notice',
  'conversation_id',
  'conversation_kind',
  'sender_account_id',
  'sender_region',
  'sender_probe_id',
  'recipient_region',
  'recipient_probe_id',
  'data_format_version',
  'updated_at',
] as const;

/** NDJSON key order (outcomeRecord's), for the test. */
export const EXPORT_JSON_KEYS = COLUMNS.map((c) => c.name);

function csvCell(name: string): SQL {
  const col = COLUMNS.find((c) => c.name === name);
  if (!col) throw new Error(`export: no column ${name}`);
  if (col.csv === 'plain') return csvPlain(col.value);
  // csvField(array): JSON.stringify, never a formula prefix (JSON escapes CR and LF).
  if (col.csv === 'array') return sql`coalesce(${csvQuoted(sql`array_to_json(${col.value})::text`)}, '')`;
  return csvText(col.value);
}

/**
 * One outcome as one line of the export, its line end included, and what the select joins to
 * build it. NDJSON: `row_to_json` of a lateral row of the named columns (keys in COLUMNS'
 * order, no spaces, values escaped as to_json does: what JSON.stringify writes); one call
 * per line instead of a to_json and a concatenation per column (decision 026, amendment 2).
 */
export function exportLine(format: ExportFormat): { line: SQL; join: SQL } {
  if (format === 'ndjson') {
    const named = COLUMNS.map((c) => sql`${c.value} as ${sql.identifier(c.name)}`);
    return {
      line: sql`row_to_json(x)::text || chr(10)`,
      join: sql`cross join lateral (select ${sql.join(named, sql`, `)}) x`,
    };
  }
  return {
    line: sql`${sql.join(EXPORT_CSV_COLUMNS.map(csvCell), sql` || ',' || `)} || chr(13) || chr(10)`,
    join: sql``,
  };
}

/**
 * Where a window of the export ends: its last canary, by send time (microseconds, as
 * isoMicros writes it) and id. A window holds every outcome of its canaries.
 */
export interface ExportKey {
  sendAt: string;
  canaryId: string;
}

const ORDER = sql`c.send_at, c.id, o.recipient_account_id`;

/** The whole export as one select of lines, in send-time order. */
export function exportSelectSql(filter: OutcomeFilter, format: ExportFormat): SQL {
  const { line, join } = exportLine(format);
  return sql`select ${line} as line from ${OUTCOME_FROM} ${join}
    where ${whereClause(outcomeConditions(filter))} order by ${ORDER}`;
}

// ---------------------------------------------------------------------------------------
// PGlite: windows of the send-time key.

/** A window's reach: about this many outcome keys (any filter aside), so one read stays short. */
export const EXPORT_WINDOW_KEYS = 5_000;

export interface ExportWindow {
  /** The matching lines of the window, joined (possibly empty). */
  text: string;
  lines: number;
  /** The window's last canary; null when the outcomes ended before the window did. */
  last: ExportKey | null;
}

/**
 * The export's lines among the next `size` outcome keys after `after`, in send-time order:
 * one walk of the index canaries (send_at, id), each canary's outcomes by their primary key,
 * for the canary of the window's last outcome; then every matching line of the canaries up to
 * and including it (so a window ends between canaries, and holds at most one canary's
 * outcomes more than `size`). The walk starts at `from` when the filter has one and stops at
 * `to`: the cost of a window is its size, at any depth, and an export of a time window never
 * reads outside it.
 */
export async function readExportWindow(
  q: Queryable,
  filter: OutcomeFilter,
  format: ExportFormat,
  after: ExportKey | undefined,
  size: number,
): Promise<ExportWindow> {
  // The walk skips other campaigns' and arms' canaries (columns of the canary, no join).
  const walk = sendTimeConditions(filter);
  if (filter.campaign) walk.push(sql`c.campaign_id = ${filter.campaign}::uuid`);
  if (filter.kind) walk.push(sql`c.kind = ${filter.kind}`);
  const past = after
    ? sql`(c.send_at, c.id) > (${after.sendAt}::timestamptz, ${after.canaryId}::uuid)`
    : undefined;
  if (past) walk.push(past);
  const [end] = await rows<{ send_at: string; canary_id: string }>(
    q,
    sql`select ${isoMicros(sql`w.send_at`)} as send_at, w.id as canary_id from (
          select c.send_at, c.id, o.recipient_account_id from canaries c
            join outcomes o on o.canary_id = c.id and ${sameDeadline('o', 'c')}
          where ${whereClause(walk)}
          order by c.send_at, c.id, o.recipient_account_id limit ${size}) w
        order by w.send_at desc, w.id desc, w.recipient_account_id desc limit 1`,
  );
  if (!end) return { text: '', lines: 0, last: null };
  const last = { sendAt: end.send_at, canaryId: end.canary_id };
  const conds = outcomeConditions(filter);
  conds.push(sql`(c.send_at, c.id) <= (${last.sendAt}::timestamptz, ${last.canaryId}::uuid)`);
  if (past) conds.push(past);
  const { line, join } = exportLine(format);
  const found = await rows<{ line: string }>(
    q,
    sql`select ${line} as line from ${OUTCOME_FROM} ${join}
        where ${whereClause(conds)} order by ${ORDER}`,
  );
  let text = '';
  for (const r of found) text += r.line;
  return { text, lines: found.length, last };
}

// ---------------------------------------------------------------------------------------
// Postgres server: COPY … TO STDOUT.

/** The pg Pool behind a drizzle database, or null on PGlite. */
export function serverPool(db: Db): pg.Pool | null {
  const client = (db as unknown as { $client?: unknown }).$client;
  return client instanceof pg.Pool ? client : null;
}

/** The select with every parameter written as a literal: COPY takes no bound parameters. */
function copyText(select: SQL): string {
  const dialect = new PgDialect();
  const bound = dialect.sqlToQuery(select);
  for (const p of bound.params) {
    // Literals go into the query text (a C string on the wire): refuse what it cannot carry.
    if (typeof p !== 'string' && typeof p !== 'number')
      throw new Error('export: a parameter of an unexpected type');
    if (typeof p === 'string' && p.includes('\u0000')) throw new Error('export: a parameter holds NUL');
  }
  // drizzle writes strings as '…' with quotes doubled; standard_conforming_strings is on (set below).
  return dialect.sqlToQuery(select.inlineParams()).sql;
}

export interface CopyExportOptions {
  /** Statement timeout of the COPY: the longest one export may hold a server connection. */
  statementTimeoutMs: number;
}

/**
 * Streams the export from a Postgres server: a pooled connection of its own, a read-only
 * transaction, `COPY (select line …) TO STDOUT (format binary)`. The returned stream gives
 * the lines' bytes as they come, pausing the connection while its reader is full. Ending
 * normally commits and returns the connection to the pool; destroying the stream (the
 * client went away, a stall, an error) cancels the query on the server (pg_cancel_backend)
 * and discards the connection (a COPY cannot be stopped midway on a reusable connection).
 */
export async function copyExportStream(
  pool: pg.Pool,
  filter: OutcomeFilter,
  format: ExportFormat,
  options: CopyExportOptions,
): Promise<CopyBinaryLines> {
  const text = `copy (${copyText(exportSelectSql(filter, format))}) to stdout (format binary)`;
  const client = await pool.connect();
  let released = false;
  const release = (err?: Error) => {
    if (released) return;
    released = true;
    client.release(err);
  };
  try {
    await client.query('begin read only');
    await client.query('set local standard_conforming_strings = on');
    await client.query(
      `set local statement_timeout = ${Math.max(0, Math.floor(options.statementTimeoutMs))}`,
    );
    // A plan that streams in order from the first row: the index canaries (send_at, id),
    // each canary's outcomes by their primary key (within a canary, a small incremental
    // sort). Left to itself the planner sorts (the whole export computed, its lines spilled
    // to disk, before the first row) in parallel workers, after compiling the expressions
    // (JIT). Measured on 300k outcomes, one campaign of four: first row after 40 ms instead
    // of 2.3-5 s, the whole no slower (decision 026). A from/to bound is an index range.
    await client.query('set local jit = off');
    await client.query('set local enable_sort = off');
    await client.query('set local max_parallel_workers_per_gather = 0');
  } catch (err) {
    release(err as Error);
    throw err;
  }
  const pid = (client as unknown as { processID: number }).processID;
  const lines = new CopyBinaryLines(async () => {
    await client.query('commit');
    release();
  });
  const copy = client.query(copyTo(text));
  copy.on('error', (err) => lines.destroy(err));
  copy.pipe(lines);
  lines.once('close', () => {
    if (released) return;
    // Stopped before the end. A cancel stops a statement that is waiting or computing; one
    // blocked writing to a full socket only notices the socket's end: so cancel, then cut
    // the connection (destroyed, not ended politely: an end would wait for the rest).
    copy.unpipe(lines);
    pool
      .query('select pg_cancel_backend($1)', [pid])
      .catch(() => {})
      .finally(() => {
        (client as unknown as { connection?: { stream?: Socket } }).connection?.stream?.destroy();
        release(new Error('export stopped before its end'));
      });
  });
  return lines;
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/**
 * COPY's binary format with one text column → the column's bytes, row after row. The
 * format: an 11-byte signature, flags (int32), a header extension (int32 length + bytes);
 * per row a field count (int16, 1) and a length (int32) before the bytes; -1 as field count
 * at the end. `onEnd` runs after the last row (the commit) before the stream ends.
 */
export class CopyBinaryLines extends Transform {
  /** Rows passed through. */
  rows = 0;
  private state: 'signature' | 'extension' | 'count' | 'length' | 'data' | 'done' = 'signature';
  /** Bytes of a fixed-size part that straddles two chunks. */
  private partial: Buffer = Buffer.alloc(0);
  private remaining = 0;

  constructor(private readonly onEnd: () => Promise<void>) {
    super();
  }

  /** Bytes the current fixed-size part needs. */
  private need(): number {
    switch (this.state) {
      case 'signature':
        return 19;
      case 'extension':
        return this.remaining;
      case 'count':
        return 2;
      case 'length':
        return 4;
      default:
        return 0;
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const out: Buffer[] = [];
    let i = 0;
    try {
      while (i < chunk.length) {
        if (this.state === 'data') {
          const n = Math.min(this.remaining, chunk.length - i);
          out.push(chunk.subarray(i, i + n));
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = 'count';
          continue;
        }
        if (this.state === 'done') throw new Error('COPY binary: bytes after the end');
        const need = this.need();
        let part: Buffer;
        if (this.partial.length === 0 && chunk.length - i >= need) {
          part = chunk.subarray(i, i + need);
          i += need;
        } else {
          const take = Math.min(need - this.partial.length, chunk.length - i);
          this.partial = Buffer.concat([this.partial, chunk.subarray(i, i + take)]);
          i += take;
          if (this.partial.length < need) break;
          part = this.partial;
          this.partial = Buffer.alloc(0);
        }
        this.part(part);
      }
    } catch (err) {
      done(err as Error);
      return;
    }
    if (out.length > 0) this.push(out.length === 1 ? out[0] : Buffer.concat(out));
    done();
  }

  private part(b: Buffer): void {
    switch (this.state) {
      case 'signature':
        if (!b.subarray(0, 11).equals(SIGNATURE)) throw new Error('COPY binary: no signature');
        this.remaining = b.readUInt32BE(15);
        this.state = this.remaining > 0 ? 'extension' : 'count';
        return;
      case 'extension':
        this.state = 'count';
        return;
      case 'count': {
        const n = b.readInt16BE(0);
        if (n === -1) this.state = 'done';
        else if (n === 1) this.state = 'length';
        else throw new Error(`COPY binary: ${n} fields, expected 1`);
        return;
      }
      case 'length': {
        const len = b.readInt32BE(0);
        if (len < 0) throw new Error('COPY binary: a null line');
        this.rows++;
        this.remaining = len;
        this.state = len > 0 ? 'data' : 'count';
        return;
      }
      default:
        throw new Error(`COPY binary: unexpected state ${this.state}`);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.state !== 'done') {
      done(new Error('COPY binary: the stream ended before its end marker'));
      return;
    }
    this.onEnd().then(
      () => done(),
      (err: Error) => done(err),
    );
  }
}

/**
 * A stream of the lines of an export window after window (PGlite): each window is one short
 * read, so the one connection serves other requests between them. A window is read only
 * when the stream's reader wants more; destroying the stream stops before the next read.
 */
export function windowedExportStream(
  read: <T>(f: (q: Queryable) => Promise<T>) => Promise<T>,
  filter: OutcomeFilter,
  format: ExportFormat,
  windowKeys = EXPORT_WINDOW_KEYS,
): Readable {
  let after: ExportKey | undefined;
  let reading = false;
  let stopped = false;
  const stream = new Readable({
    highWaterMark: 1,
    read() {
      if (reading) return;
      reading = true;
      void (async () => {
        try {
          // Windows with no matching row are skipped until one has lines or the table ends.
          while (!stopped) {
            const from = after;
            const w = await read((q) => readExportWindow(q, filter, format, from, windowKeys));
            if (stopped) return;
            after = w.last ?? undefined;
            if (w.text) stream.push(Buffer.from(w.text, 'utf8'));
            if (!w.last) {
              stream.push(null);
              return;
            }
            if (w.text) return;
          }
        } catch (err) {
          stream.destroy(err as Error);
        } finally {
          reading = false;
        }
      })();
    },
    destroy(err, done) {
      stopped = true;
      done(err);
    },
  });
  return stream;
}

/** Postgres SQLSTATE query_canceled: what a first line that came too late is reported as. */
const QUERY_CANCELED = '57014';

/**
 * Waits for the stream's first bytes (null: it ended with none) and leaves it paused; with
 * `timeoutMs`, a stream that gives nothing in that time is destroyed and the wait fails like
 * a statement timeout (SQLSTATE 57014).
 */
export function firstBytes(stream: Readable, timeoutMs?: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            cleanup();
            stream.destroy();
            reject(
              Object.assign(new Error(`export: no line within ${timeoutMs} ms`), { code: QUERY_CANCELED }),
            );
          }, timeoutMs);
    const onData = (chunk: Buffer) => {
      stream.pause();
      cleanup();
      resolve(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(null);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    function cleanup() {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
    }
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
  });
}

/** The export as the route sees it: its first bytes (read before answering) and the rest. */
export interface StartedExport {
  first: Buffer | null;
  rest: Readable;
}

export interface ExportSourceOptions {
  /** Research statement timeout: the first line must come within it (server). */
  firstLineTimeoutMs: number;
  /** Statement timeout of the whole COPY (server). */
  copyTimeoutMs: number;
}

/**
 * Starts exports on this database: COPY on a server, windows on PGlite (whose reads go
 * through `read`, the research reader).
 */
export function exportSource(
  db: Db,
  read: <T>(f: (q: Queryable) => Promise<T>) => Promise<T>,
  options: ExportSourceOptions,
): (filter: OutcomeFilter, format: ExportFormat) => Promise<StartedExport> {
  const pool = serverPool(db);
  return async (filter, format) => {
    const rest = pool
      ? await copyExportStream(pool, filter, format, { statementTimeoutMs: options.copyTimeoutMs })
      : windowedExportStream(read, filter, format);
    // An error after the first bytes reaches the route through its pipeline; until the route
    // has set that up, this listener keeps it from being an uncaught 'error' event.
    rest.on('error', () => {});
    return { first: await firstBytes(rest, pool ? options.firstLineTimeoutMs : undefined), rest };
  };
}
