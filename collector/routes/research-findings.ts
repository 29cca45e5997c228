/** GET /api/v1/findings (with evidence, keyset pages) and GET /api/v1/probes (probe health). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ApiError, FindingsQuery, FindingsResponse, ProbesHealthResponse } from '../../protocol/research.ts';
import { readFindings } from '../db/research-findings.ts';
import { readProbeHealth } from '../db/research-probes.ts';
import {
  decodeFindingCursor,
  encodeFindingCursor,
  type ResearchRead,
  toFindingFilter,
} from './research-query.ts';
import { findingRecord } from './research-records.ts';

export const researchFindingRoutes: FastifyPluginAsyncTypebox<{ read: ResearchRead }> = async (
  app,
  { read },
) => {
  app.get(
    '/findings',
    {
      schema: {
        summary:
          'Findings with their evidence: counts, rates, interval, p, q, minimal term sets, onset and end',
        tags: ['findings'],
        querystring: FindingsQuery,
        response: { 200: FindingsResponse, 400: ApiError, 429: ApiError, 503: ApiError },
      },
    },
    async (req) => {
      const limit = req.query.limit ?? 200;
      const after = req.query.cursor ? decodeFindingCursor(req.query.cursor) : undefined;
      const filter = toFindingFilter(req.query);
      const found = await read((q) => readFindings(q, filter, { after, limit: limit + 1 }));
      const page = found.slice(0, limit);
      const last = page[page.length - 1];
      return {
        findings: page.map(findingRecord),
        next_cursor:
          found.length > limit && last
            ? encodeFindingCursor({ windowStart: last.key_window_start, id: last.id })
            : null,
      };
    },
  );

  app.get(
    '/probes',
    {
      schema: {
        summary: 'Probe health: last check-in, clock offset, accounts and their state, outbox backlog',
        description: 'Country and ASN only: no address, key, label or account handle is ever returned.',
        tags: ['probes'],
        response: { 200: ProbesHealthResponse, 429: ApiError, 503: ApiError },
      },
    },
    async () => {
      const { probes, accounts } = await read((q) => readProbeHealth(q));
      return {
        probes: probes.map((p) => ({
          ...p,
          accounts: accounts.filter((a) => a.probe_id === p.id).map(({ probe_id: _probe, ...a }) => a),
        })),
      };
    },
  );
};
