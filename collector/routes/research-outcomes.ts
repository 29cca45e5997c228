/** GET /api/v1/outcomes: keyset pages in send-time order (the export: research-export.ts). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ApiError, OutcomesPage, OutcomesQuery } from '../../protocol/research.ts';
import { type OutcomeKey, type ResearchOutcomeRow, readOutcomes } from '../db/research-outcomes.ts';
import { SEALED_NOTE } from './research-export.ts';
import {
  decodeOutcomeCursor,
  encodeOutcomeCursor,
  type ResearchRead,
  toOutcomeFilter,
} from './research-query.ts';
import { outcomeRecord } from './research-records.ts';

const keyOf = (r: ResearchOutcomeRow): OutcomeKey => ({
  sendAt: r.key_send_at,
  canaryId: r.canary_id,
  recipientId: r.recipient_account_id,
});

export interface ResearchOutcomeRoutesOptions {
  read: ResearchRead;
}

export const researchOutcomeRoutes: FastifyPluginAsyncTypebox<ResearchOutcomeRoutesOptions> = async (
  app,
  { read },
) => {
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
};
