/**
 * GET /api/v1/export: every matching outcome, streamed as NDJSON or CSV (decision 026).
 *
 * - The lines come from the database ready-made (db/research-export.ts): one `COPY … TO
 *   STDOUT` on a Postgres server, short windows of the send-time key on PGlite. Memory stays
 *   flat: bytes move from the database to the socket, paused while the socket is full.
 * - The first line is awaited before answering, so a failure or a timeout there is a proper
 *   error status (503 SD_ERR_QUERY_TIMEOUT when no line came within the research statement
 *   timeout). After that the whole COPY runs under the export's own, longer timeout.
 * - A client that goes away stops the export at once: the statement is cancelled and its
 *   connection cut (server), or no further window is read (PGlite). A client that reads
 *   nothing for `stallMs` while the socket is full is cut the same way.
 * - A failure after the first bytes cuts the connection without the chunked encoding's
 *   last chunk: no client can take a broken export for a complete one (every HTTP client
 *   reports a body that ended early as an error).
 */
import type { ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { PassThrough, pipeline } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ApiError, ExportQuery, OUTCOME_COLUMNS } from '../../protocol/research.ts';
import type { ExportFormat, StartedExport } from '../db/research-export.ts';
import type { OutcomeFilter } from '../db/research-filters.ts';
import { RetryLaterError } from '../errors.ts';
import { csvLine, wantsCsv } from './research-csv.ts';
import { queryTimeoutAnswer, toOutcomeFilter } from './research-query.ts';

/** Seconds a client is asked to wait when every export slot is taken. */
export const EXPORT_BUSY_RETRY_SECONDS = 10;

const text = (description: string) => ({ schema: Type.String({ description }) });

export const SEALED_NOTE =
  'A canary is sealed until its deadline has passed and none of its outcomes is pending: its rows carry ' +
  'no text, received text or term set (null; empty in CSV), and `terms`/`verdict` filters do not match them.';

export interface ResearchExportRoutesOptions {
  /** Starts an export on the database (db/research-export.ts exportSource). */
  start: (filter: OutcomeFilter, format: ExportFormat) => Promise<StartedExport>;
  /** The research statement timeout, for the 503 message. */
  statementTimeoutMs: number;
  /** The longest an export may run on a server (statement timeout of its COPY), for the docs. */
  copyTimeoutMs: number;
  /** Exports streaming at once; one more is refused with 503 SD_ERR_BUSY. */
  maxConcurrentExports: number;
  /** A client whose socket stayed full this long is cut. */
  stallMs: number;
}

/**
 * Calls `onStall` when the response has been unable to take more (its socket full, the
 * client reading nothing) for `stallMs` without a moment of drain.
 */
export function watchStall(res: ServerResponse, stallMs: number, onStall: () => void): void {
  // Only a real socket can be full (app.inject's stand-in buffers everything and never drains).
  if (!(res.socket instanceof Socket)) return;
  let blockedSince: number | undefined;
  const onDrain = () => {
    blockedSince = undefined;
  };
  const timer = setInterval(
    () => {
      if (!res.writableNeedDrain) {
        blockedSince = undefined;
        return;
      }
      const now = Date.now();
      blockedSince ??= now;
      if (now - blockedSince >= stallMs) {
        stop();
        onStall();
      }
    },
    Math.max(20, Math.min(1_000, stallMs / 4)),
  );
  timer.unref();
  function stop() {
    clearInterval(timer);
    res.off('drain', onDrain);
  }
  res.on('drain', onDrain);
  res.once('close', stop);
}

export const researchExportRoutes: FastifyPluginAsyncTypebox<ResearchExportRoutesOptions> = async (
  app,
  { start, statementTimeoutMs, copyTimeoutMs, maxConcurrentExports, stallMs },
) => {
  let exporting = 0;
  app.get(
    '/export',
    {
      schema: {
        summary: 'Every matching outcome, streamed as NDJSON (default) or CSV',
        description:
          'Rows come in (send_at, canary_id, recipient_account_id) order, as the pages of /outcomes; ' +
          'an export narrowed by `from`/`to` reads only that window. ' +
          `${SEALED_NOTE} At most ${maxConcurrentExports} exports stream at once (503 SD_ERR_BUSY with ` +
          'retry-after beyond). The first line must come within the statement timeout (else 503 ' +
          'SD_ERR_QUERY_TIMEOUT); after it the export streams for up to ' +
          `${Math.round(copyTimeoutMs / 60_000)} minutes on a Postgres server. A client that reads nothing for ` +
          `${Math.round(stallMs / 1000)} s while the connection is full is cut. **A failure after the first ` +
          'bytes cuts the connection without the last chunk of the chunked answer**: a complete export ' +
          'always ends with a complete chunked body (and, in CSV and NDJSON, with a line end); treat an ' +
          'answer that ended early as failed, retry, or narrow it with `from`/`to`.',
        tags: ['outcomes'],
        querystring: ExportQuery,
        response: {
          200: {
            description: 'one outcome per line, in (send_at, canary_id, recipient_account_id) order',
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
      let started: StartedExport;
      try {
        started = await start(filter, csv ? 'csv' : 'ndjson');
      } catch (err) {
        release();
        throw queryTimeoutAnswer(err, statementTimeoutMs);
      }
      const head = Buffer.concat([
        Buffer.from(csv ? csvLine(OUTCOME_COLUMNS) : '', 'utf8'),
        started.first ?? Buffer.alloc(0),
      ]);
      const body = new PassThrough();
      if (head.length > 0) body.write(head);
      if (started.first === null) {
        body.end();
      } else {
        // Errors end the body with the error; fastify then destroys the response (logged there).
        pipeline(started.rest, body, () => {});
      }
      // Released when the answer is complete, fails, or the client goes away.
      body.once('close', release);
      reply.raw.once('finish', release);
      reply.raw.once('close', release);
      watchStall(reply.raw, stallMs, () => {
        req.log.warn({ stallMs }, 'export: the client read nothing while the connection was full; cut');
        reply.raw.destroy();
      });
      const ext = csv ? 'csv' : 'ndjson';
      return (
        reply
          .header('content-type', csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
          .header('content-disposition', `attachment; filename="silentdrop-outcomes.${ext}"`)
          .header('cache-control', 'no-store')
          // The typed reply expects the documented string body; a stream is sent as it is produced.
          .send(body as unknown as string)
      );
    },
  );
};
