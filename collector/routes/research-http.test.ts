import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertFinding } from '../db/research-fixtures.ts';
import { clientKey } from '../http/rate-limit.ts';
import { createLogger } from '../logger.ts';
import { keyedHash } from '../secrets.ts';
import { describeEachDb } from '../test-support/db.ts';
import { TEST_HASH_KEY } from '../test-support/probe.ts';
import { buildResearchApp, buildResearchWorld, type ResearchWorld } from './research-fixture.ts';

const CLIENT_A = '203.0.113.7';
const CLIENT_B = '198.51.100.9';

function logSink() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'trace', destination: stream }) };
}

type OpenApiDoc = {
  openapi: string;
  paths: Record<
    string,
    Record<string, { responses?: Record<string, unknown>; parameters?: { name: string; in: string }[] }>
  >;
};

describeEachDb('research API: rate limit, OpenAPI, metrics', (getDb) => {
  let app: FastifyInstance;
  let w: ResearchWorld;
  const sink = logSink();

  beforeAll(async () => {
    app = await buildResearchApp(getDb().db, {
      rateLimit: { max: 5, timeWindowMs: 60_000 },
      logger: sink.logger,
      dashboardDir: mkdtempSync(join(tmpdir(), 'sd-no-dashboard-')),
    });
    w = await buildResearchWorld(app, getDb().db, { hours: 1 });
  });
  afterAll(async () => {
    await app.close();
  });

  describe('rate limit', () => {
    it('counts down x-ratelimit-remaining, answers 429 past the quota, and keeps clients apart', async () => {
      const remaining: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await app.inject({ url: '/api/v1/probes', remoteAddress: CLIENT_A });
        expect(res.statusCode).toBe(200);
        remaining.push(String(res.headers['x-ratelimit-remaining']));
      }
      expect(remaining).toEqual(['4', '3', '2', '1', '0']);
      const limited = await app.inject({ url: '/api/v1/outcomes', remoteAddress: CLIENT_A });
      expect(limited.statusCode).toBe(429);
      expect(limited.json()).toMatchObject({ statusCode: 429, code: 'SD_ERR_RATE_LIMITED' });
      expect(limited.headers['x-ratelimit-remaining']).toBe('0');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      const other = await app.inject({ url: '/api/v1/probes', remoteAddress: CLIENT_B });
      expect(other.statusCode).toBe(200);
      expect(other.headers['x-ratelimit-remaining']).toBe('4');
      // Operations endpoints are not part of the research quota.
      expect((await app.inject({ url: '/metrics', remoteAddress: CLIENT_A })).statusCode).toBe(200);
    });

    it('knows a client only by a keyed hash of its address, and never logs the address', async () => {
      const key = clientKey(TEST_HASH_KEY, { ip: CLIENT_A });
      expect(key).toMatch(/^[0-9a-f]{64}$/);
      expect(key).not.toContain(CLIENT_A);
      expect(key).not.toBe(keyedHash(Buffer.from('another key 0123456789'), `rate-limit:${CLIENT_A}`));
      const logs = sink.lines.join('');
      expect(logs.length).toBeGreaterThan(0);
      expect(logs).not.toContain(CLIENT_A);
      expect(logs).not.toContain(CLIENT_B);
      expect(logs).not.toContain('127.0.0.1');
    });
  });

  describe('OpenAPI', () => {
    it('documents every research route with parameters and responses in an OpenAPI 3 document', async () => {
      const res = await app.inject({ url: '/docs/json', remoteAddress: '192.0.2.50' });
      expect(res.statusCode).toBe(200);
      const doc = res.json() as OpenApiDoc;
      expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
      // Valid against the official OpenAPI JSON Schema for its version; a broken copy is not.
      const validation = await new Validator().validate(res.json());
      expect(validation.valid, JSON.stringify(validation.errors ?? null).slice(0, 2000)).toBe(true);
      const broken = { ...(res.json() as Record<string, unknown>), info: { title: 1 } };
      expect((await new Validator().validate(broken)).valid).toBe(false);
      for (const path of [
        '/api/v1/outcomes',
        '/api/v1/aggregation',
        '/api/v1/findings',
        '/api/v1/export',
        '/api/v1/probes',
        '/api/v1/latency',
        '/api/v1/term-sets',
        '/probe/v1/events',
        '/healthz',
      ]) {
        expect(doc.paths[path], path).toBeDefined();
      }
      for (const [path, ops] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(ops)) {
          expect(Object.keys(op.responses ?? {}).length, `${method} ${path}`).toBeGreaterThan(0);
        }
      }
      const names = (doc.paths['/api/v1/outcomes']?.get?.parameters ?? []).map((p) => `${p.in}:${p.name}`);
      for (const n of [
        'campaign',
        'platform',
        'terms',
        'kind',
        'status',
        'verdict',
        'sender_region',
        'recipient_region',
        'conversation_kind',
        'probe',
        'from',
        'to',
        'cursor',
        'limit',
      ]) {
        expect(names).toContain(`query:${n}`);
      }
      // Every $ref points into the document.
      const text = res.body;
      for (const m of text.matchAll(/"\$ref":"#\/([^"]+)"/g)) {
        const target = m[1]!
          .split('/')
          .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], doc);
        expect(target, m[1]).toBeDefined();
      }
      const ui = await app.inject({ url: '/docs', remoteAddress: '192.0.2.50' });
      expect([200, 302]).toContain(ui.statusCode);
    });
  });

  describe('metrics', () => {
    it('exports ingest counts, request latency, outbox backlog and findings by verdict', async () => {
      await insertFinding(getDb().db, {
        campaignId: w.campaignId,
        termSet: ['六四', '天安门'],
        scope: {},
        windowStart: w.start,
        windowEnd: w.end,
        verdict: 'suppressed',
        testTrials: 3,
        controlTrials: 3,
        testRate: 1,
        controlRate: 0,
        pValue: 0.05,
        qValue: 0.05,
        ciLow: 0.4,
        ciHigh: 1,
      });
      const res = await app.inject({ url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      const stored = /sd_ingest_events_total\{status="stored"\} (\d+)/.exec(res.body);
      expect(Number(stored?.[1])).toBeGreaterThan(w.expected.length / 3);
      expect(res.body).toMatch(
        new RegExp(`sd_probe_outbox_backlog\\{probe="${w.probes.cn.id}",country="CN"\\} 0`),
      );
      expect(res.body).toMatch(/sd_probe_dead_letters\{probe="[^"]+",country="AU"\} 0/);
      expect(res.body).toMatch(/sd_findings\{verdict="suppressed"\} 1/);
      expect(res.body).toMatch(
        /sd_http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/probes",status_code="200"\} \d+/,
      );
      expect(res.body).not.toContain(CLIENT_A);
    });
  });

  it('answers / with how to build the dashboard when it is not built', async () => {
    const res = await app.inject({ url: '/' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('npm run build:dashboard');
  });
});
