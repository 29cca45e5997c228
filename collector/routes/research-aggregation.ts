/**
 * GET /api/v1/aggregation (counts and rates by one or two axes), /latency (histogram,
 * tests against controls) and /term-sets (per term set: both arms, verdict, onset).
 * JSON, or CSV with `format=csv` / `Accept: text/csv`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import {
  type AggregationAxis,
  AggregationQuery,
  AggregationResponse,
  ApiError,
  LATENCY_BIN_EDGES_MS,
  LatencyQuery,
  LatencyResponse,
  type TermSetSummary,
  TermSetsQuery,
  TermSetsResponse,
} from '../../protocol/research.ts';
import { countByAxes, countByTermSet, latencyHistogram } from '../db/research-aggregation.ts';
import { latestFindingPerTermSet } from '../db/research-findings.ts';
import { type CsvValue, csvTable, wantsCsv } from './research-csv.ts';
import { type ResearchRead, toFindingFilter, toOutcomeFilter } from './research-query.ts';
import { CONFIDENCE, EMPTY_COUNTS, groupCounts, termsKey } from './research-records.ts';

const COUNT_COLUMNS = [
  'n',
  'delivered',
  'delayed',
  'missing',
  'altered',
  'rejected',
  'failed',
  'pending',
  'missing_rate',
  'missing_ci_low',
  'missing_ci_high',
  'adverse_rate',
  'adverse_ci_low',
  'adverse_ci_high',
  'latency_p50_ms',
  'latency_p95_ms',
] as const;

function countCells(g: ReturnType<typeof groupCounts>): CsvValue[] {
  return [
    g.n,
    g.delivered,
    g.delayed,
    g.missing,
    g.altered,
    g.rejected,
    g.failed,
    g.pending,
    g.missing_rate,
    g.missing_interval?.low,
    g.missing_interval?.high,
    g.adverse_rate,
    g.adverse_interval?.low,
    g.adverse_interval?.high,
    g.latency_p50_ms,
    g.latency_p95_ms,
  ];
}

const csvOr = (description: string, json: unknown) => ({
  description,
  content: { 'application/json': { schema: json }, 'text/csv': { schema: Type.String() } },
});

export const researchAggregationRoutes: FastifyPluginAsyncTypebox<{ read: ResearchRead }> = async (
  app,
  { read },
) => {
  app.get(
    '/aggregation',
    {
      schema: {
        summary: 'Outcome counts and rates (Wilson intervals) grouped by one or two axes',
        tags: ['aggregation'],
        querystring: AggregationQuery,
        response: {
          200: csvOr('grouped counts', AggregationResponse),
          400: ApiError,
          429: ApiError,
          503: ApiError,
        },
      },
    },
    async (req, reply) => {
      const axes = req.query.group_by.split(',') as AggregationAxis[];
      if (axes.length === 2 && axes[0] === axes[1]) {
        return reply.status(400).send({
          statusCode: 400,
          code: 'SD_ERR_VALIDATION',
          message: 'querystring/group_by: two different axes',
        });
      }
      const filter = toOutcomeFilter(req.query);
      const found = await read((q) => countByAxes(q, filter, axes));
      const rows = found.map((r) => ({
        keys: r.k.map((v) => (Array.isArray(v) ? termsKey(v) : v)),
        ...groupCounts(r),
      }));
      if (wantsCsv(req.query.format, req.headers.accept)) {
        const body = csvTable(
          [...axes, ...COUNT_COLUMNS],
          rows.map((r) => [...r.keys, ...countCells(r)]),
        );
        return reply.type('text/csv; charset=utf-8').send(body);
      }
      return reply.type('application/json').send({ axes, confidence: CONFIDENCE, rows });
    },
  );

  app.get(
    '/latency',
    {
      schema: {
        summary: 'Delivery latency histogram and quantiles, tests against controls',
        tags: ['aggregation'],
        querystring: LatencyQuery,
        response: { 200: csvOr('histogram', LatencyResponse), 400: ApiError, 429: ApiError, 503: ApiError },
      },
    },
    async (req, reply) => {
      const filter = toOutcomeFilter(req.query);
      const { series, quantileError } = await read((q) => latencyHistogram(q, filter));
      const bins = [0, ...LATENCY_BIN_EDGES_MS].map((lo, i) => ({
        lo_ms: lo,
        hi_ms: LATENCY_BIN_EDGES_MS[i] ?? null,
      }));
      if (wantsCsv(req.query.format, req.headers.accept)) {
        const rows = bins.map((b, i) => [b.lo_ms, b.hi_ms, ...series.map((s) => s.counts[i] ?? 0)]);
        return reply
          .type('text/csv; charset=utf-8')
          .send(csvTable(['lo_ms', 'hi_ms', ...series.map((s) => s.kind)], rows));
      }
      return reply.type('application/json').send({
        quantile_error: quantileError,
        bins,
        series: series.map((s) => ({
          kind: s.kind,
          n: s.n,
          counts: s.counts,
          p50_ms: s.p50,
          p90_ms: s.p90,
          p95_ms: s.p95,
          p99_ms: s.p99,
        })),
      });
    },
  );

  app.get(
    '/term-sets',
    {
      schema: {
        summary: 'Every term set: test and control counts, rates, intervals, latest verdict and onset',
        tags: ['aggregation'],
        querystring: TermSetsQuery,
        response: { 200: csvOr('term sets', TermSetsResponse), 400: ApiError, 429: ApiError, 503: ApiError },
      },
    },
    async (req, reply) => {
      const filter = toOutcomeFilter(req.query);
      const findingFilter = toFindingFilter(req.query);
      const { list, findings } = await read(async (q) => ({
        list: await countByTermSet(q, filter, req.query.limit ?? 5000),
        findings: await latestFindingPerTermSet(q, findingFilter),
      }));
      const findingByKey = new Map(findings.map((f) => [termsKey(f.term_set), f]));
      const byKey = new Map<string, TermSetSummary>();
      for (const c of list.counts) {
        const key = termsKey(c.term_set);
        let s = byKey.get(key);
        if (!s) {
          const f = findingByKey.get(key);
          s = {
            term_set: c.term_set,
            terms_key: key,
            test: groupCounts(EMPTY_COUNTS),
            control: groupCounts(EMPTY_COUNTS),
            verdict: (f?.verdict ?? null) as TermSetSummary['verdict'],
            finding_id: f?.id ?? null,
            onset_at: f && f.verdict !== 'none' && f.verdict !== 'inconclusive' ? f.onset_at : null,
            first_sent_at: c.first_sent_at,
            last_sent_at: c.last_sent_at,
          };
          byKey.set(key, s);
        }
        s[c.kind] = groupCounts(c);
        if (c.first_sent_at < s.first_sent_at) s.first_sent_at = c.first_sent_at;
        if (c.last_sent_at > s.last_sent_at) s.last_sent_at = c.last_sent_at;
      }
      const termSets = [...byKey.values()];
      if (wantsCsv(undefined, req.headers.accept)) {
        const header = ['terms_key', 'verdict', 'onset_at', ...COUNT_COLUMNS.map((c) => `test_${c}`)];
        const rows = termSets.map((s) => [s.terms_key, s.verdict, s.onset_at, ...countCells(s.test)]);
        return reply.type('text/csv; charset=utf-8').send(
          csvTable(
            [...header, 'control_n', 'control_missing_rate'],
            rows.map((r, i) => [...r, termSets[i]!.control.n, termSets[i]!.control.missing_rate]),
          ),
        );
      }
      return reply
        .type('application/json')
        .send({ confidence: CONFIDENCE, quantile_error: list.quantileError, term_sets: termSets });
    },
  );
};
