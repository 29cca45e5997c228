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
import type { Db } from '../db/open.ts';
import type { OutcomeFilter } from '../db/research-filters.ts';
import {
  nextKeyWindow,
  type OutcomeKey,
  type ResearchOutcomeRow,
  readOutcomes,
} from '../db/research-outcomes.ts';
import { csvLine, wantsCsv } from './research-csv.ts';
import { decodeOutcomeCursor, encodeOutcomeCursor, toOutcomeFilter } from './research-query.ts';
import { outcomeRecord } from './research-records.ts';

/** Rows per keyset read of an export. */
export const EXPORT_BATCH = 2000;

const keyOf = (r: ResearchOutcomeRow): OutcomeKey => ({
  sendAt: r.key_send_at,
  canaryId: r.canary_id,
  recipientId: r.recipient_account_id,
});

/** Yields one text chunk per batch; stops early when the consumer stops pulling. */
export async function* exportChunks(db: Db, filter: OutcomeFilter, csv: boolean): AsyncGenerator<string> {
  if (csv) yield csvLine(OUTCOME_COLUMNS);
  let after: OutcomeKey | undefined;
  for (;;) {
    // A window of the primary key, then the matching rows inside it: bounded work per batch.
    const upTo = await nextKeyWindow(db, after, EXPORT_BATCH);
    if (!upTo) return;
    const batch = await readOutcomes(db, filter, {
      after,
      upTo,
      order: 'asc',
      limit: EXPORT_BATCH,
      keyset: 'id',
    });
    after = upTo;
    if (batch.length === 0) continue;
    let chunk = '';
    for (const row of batch) {
      const rec = outcomeRecord(row);
      chunk += csv ? csvLine(OUTCOME_COLUMNS.map((c) => rec[c])) : `${JSON.stringify(rec)}\n`;
    }
    yield chunk;
  }
}

const text = (description: string) => ({ schema: Type.String({ description }) });

export const researchOutcomeRoutes: FastifyPluginAsyncTypebox<{ db: Db }> = async (app, { db }) => {
  app.get(
    '/outcomes',
    {
      schema: {
        summary: 'Outcomes, filtered, in keyset pages (send time, canary, recipient)',
        tags: ['outcomes'],
        querystring: OutcomesQuery,
        response: { 200: OutcomesPage, 400: ApiError, 429: ApiError },
      },
    },
    async (req) => {
      const order = req.query.order ?? 'asc';
      const limit = req.query.limit ?? 100;
      const after = req.query.cursor ? decodeOutcomeCursor(req.query.cursor, order) : undefined;
      // One row more than asked tells whether another page exists.
      const found = await readOutcomes(db, toOutcomeFilter(req.query), { after, order, limit: limit + 1 });
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
          'Rows come in (canary_id, recipient_account_id) order; sort by send_at afterwards if needed.',
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
        },
      },
    },
    async (req, reply) => {
      const csv = req.query.format ? req.query.format === 'csv' : wantsCsv(undefined, req.headers.accept);
      const filter = toOutcomeFilter(req.query);
      const stream = Readable.from(exportChunks(db, filter, csv), { highWaterMark: 1 });
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
