/**
 * GET /api/v1/outcomes (keyset pages in send-time order) and GET /api/v1/export (every
 * matching outcome, streamed as NDJSON or CSV in batches read by primary-key keyset:
 * constant memory and constant cost per batch; backpressure from the socket pauses
 * the reads; a client that goes away stops them).
 */
import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import {
  ApiError,
  ExportQuery,
  OUTCOME_COLUMNS,
  OutcomesPage,
  OutcomesQuery,
} from '../../protocol/research.ts';
import type { OutcomeFilter } from '../db/research-filters.ts';
import {
  nextKeyWindow,
  type OutcomeKey,
  type ResearchOutcomeRow,
  readOutcomes,
} from '../db/research-outcomes.ts';
import { RetryLaterError } from '../errors.ts';
import { csvLine, wantsCsv } from './research-csv.ts';
import {
  decodeOutcomeCursor,
  encodeOutcomeCursor,
  type ResearchRead,
  toOutcomeFilter,
} from './research-query.ts';
import { outcomeRecord } from './research-records.ts';

/** Rows per keyset read of an export. */
export const EXPORT_BATCH = 2000;

const keyOf = (r: ResearchOutcomeRow): OutcomeKey => ({
  sendAt: r.key_send_at,
  canaryId: r.canary_id,
  recipientId: r.recipient_account_id,
});

/** Seconds a client is asked to wait when every export slot is taken. */
export const EXPORT_BUSY_RETRY_SECONDS = 10;

/**
 * Yields one text chunk per batch (the CSV header with the first); stops early when the
 * consumer stops pulling. Each batch is one read under the statement timeout.
 */
export async function* exportChunks(
  read: ResearchRead,
  filter: OutcomeFilter,
  csv: boolean,
): AsyncGenerator<string> {
  let header = csv ? csvLine(OUTCOME_COLUMNS) : '';
  let after: OutcomeKey | undefined;
  for (;;) {
    // A window of the primary key, then the matching rows inside it: bounded work per batch.
    const from = after;
    const found = await read(async (q) => {
      const upTo = await nextKeyWindow(q, from, EXPORT_BATCH);
      if (!upTo) return null;
      const rows = await readOutcomes(q, filter, {
        after: from,
        upTo,
        order: 'asc',
        limit: EXPORT_BATCH,
        keyset: 'id',
      });
      return { upTo, rows };
    });
    if (!found) {
      if (header) yield header;
      return;
    }
    const batch = found.rows;
    after = found.upTo;
    if (batch.length === 0) continue;
    let chunk = header;
    header = '';
    for (const row of batch) {
      const rec = outcomeRecord(row);
      chunk += csv ? csvLine(OUTCOME_COLUMNS.map((c) => rec[c])) : `${JSON.stringify(rec)}\n`;
    }
    yield chunk;
  }
}

const text = (description: string) => ({ schema: Type.String({ description }) });

const SEALED_NOTE =
  'A canary is sealed until its deadline has passed and none of its outcomes is pending: its rows carry ' +
  'no text, received text or term set (null; empty in CSV), and `terms`/`verdict` filters do not match them.';

export interface ResearchOutcomeRoutesOptions {
  read: ResearchRead;
  /** Exports streaming at once; one more is refused with 503 SD_ERR_BUSY. */
  maxConcurrentExports: number;
}

export const researchOutcomeRoutes: FastifyPluginAsyncTypebox<ResearchOutcomeRoutesOptions> = async (
  app,
  { read, maxConcurrentExports },
) => {
  let exporting = 0;
  app.get(
    '/outcomes',
    {
      schema: {
        summary: 'Outcomes, filtered, in keyset pages (send time, canary, recipient)',
        tags: ['outcomes'],
        querystring: OutcomesQuery,
        description: SEALED_NOTE,
        response: { 200: OutcomesPage, 400: ApiError, 429: ApiError, 503: ApiError },
      },
    },
    async (req) => {
      const order = req.query.order ?? 'asc';
      const limit = req.query.limit ?? 100;
      const after = req.query.cursor ? decodeOutcomeCursor(req.query.cursor, order) : undefined;
      // One row more than asked tells whether another page exists.
      const filter = toOutcomeFilter(req.query);
      const found = await read((q) => readOutcomes(q, filter, { after, order, limit: limit + 1 }));
      const page = found.slice(0, limit);
      const last = page[page.length - 1];
      return {
        outcomes: page.map(outcomeRecord),
        next_cursor: found.length > limit && last ? encodeOutcomeCursor(keyOf(last), order) : null,
      };
    },
  );

  app.get(
    '/export',
    {
      schema: {
        summary: 'Every matching outcome, streamed as NDJSON (default) or CSV',
        description:
          'Rows come in (canary_id, recipient_account_id) order; sort by send_at afterwards if needed. ' +
          `${SEALED_NOTE} At most a few exports stream at once (503 SD_ERR_BUSY with retry-after beyond); ` +
          'each batch runs under the statement timeout: a timeout before the first row answers 503 ' +
          'SD_ERR_QUERY_TIMEOUT, a later one cuts the stream (an incomplete chunked answer): retry, or narrow ' +
          'it with `from`/`to`.',
        tags: ['outcomes'],
        querystring: ExportQuery,
        response: {
          200: {
            description: 'one outcome per line, in (canary_id, recipient_account_id) order',
            content: {
              'application/x-ndjson': text('one OutcomeRecord JSON object per line'),
              'text/csv': text('RFC 4180, a header line, the OutcomeRecord columns'),
            },
          },
          400: ApiError,
          429: ApiError,
          503: ApiError,
        },
      },
    },
    async (req, reply) => {
      const csv = req.query.format ? req.query.format === 'csv' : wantsCsv(undefined, req.headers.accept);
      const filter = toOutcomeFilter(req.query);
      if (exporting >= maxConcurrentExports) {
        throw new RetryLaterError(
          'SD_ERR_BUSY',
          `export: ${maxConcurrentExports} exports are running; retry later`,
          EXPORT_BUSY_RETRY_SECONDS,
        );
      }
      exporting++;
      let released = false;
      const release = () => {
        if (!released) exporting--;
        released = true;
      };
      let stream: Readable;
      try {
        // The first batch is read before answering, so a timeout there is a proper 503.
        const chunks = exportChunks(read, filter, csv);
        const first = await chunks.next();
        stream = Readable.from(
          (async function* () {
            if (!first.done) yield first.value;
            yield* chunks;
          })(),
          { highWaterMark: 1 },
        );
      } catch (err) {
        release();
        throw err;
      }
      // Released when the answer is complete, fails, or the client goes away.
      stream.once('close', release);
      reply.raw.once('finish', release);
      reply.raw.once('close', release);
      stream.on('error', (err) => req.log.error({ err }, 'export stream failed'));
      const ext = csv ? 'csv' : 'ndjson';
      return (
        reply
          .header('content-type', csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
          .header('content-disposition', `attachment; filename="silentdrop-outcomes.${ext}"`)
          .header('cache-control', 'no-store')
          // The typed reply expects the documented string body; a stream is sent as it is produced.
          .send(stream as unknown as string)
      );
    },
  );
};
