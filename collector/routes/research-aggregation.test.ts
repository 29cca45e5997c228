import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  AggregationResponse,
  FindingsResponse,
  LatencyResponse,
  TermSetsResponse,
} from '../../protocol/research.ts';
import { wilson } from '../analysis/stats.ts';
import { insertFinding } from '../db/research-fixtures.ts';
import { describeEachDb } from '../test-support/db.ts';
import {
  buildResearchApp,
  buildResearchWorld,
  DELAYED,
  type ExpectedOutcome,
  type ResearchWorld,
  SENSITIVE,
  XSS,
} from './research-fixture.ts';

const FINAL = new Set(['delivered', 'delayed', 'missing', 'altered', 'rejected']);

function tally(list: ExpectedOutcome[]) {
  const n = list.filter((e) => FINAL.has(e.status)).length;
  const missing = list.filter((e) => e.status === 'missing').length;
  const delivered = list.filter((e) => e.status === 'delivered').length;
  return { n, missing, delivered };
}

/** Parses the CSV this API writes (quoted fields, doubled quotes, CRLF). */
function parseCsv(text: string): string[][] {
  const out: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n') {
      row.push(field.replace(/\r$/, ''));
      out.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  return out;
}

describeEachDb('research API: aggregation, findings, probes', (getDb) => {
  let app: FastifyInstance;
  let w: ResearchWorld;
  const campaignQ = () => `campaign=${w.campaignId}`;

  beforeAll(async () => {
    app = await buildResearchApp(getDb().db);
    w = await buildResearchWorld(app, getDb().db, { hours: 3 });
  });
  afterAll(async () => {
    await app.close();
  });

  describe('aggregation', () => {
    it('counts by hour and kind with Wilson intervals that match the ingested outcomes', async () => {
      const res = await app.inject({ url: `/api/v1/aggregation?${campaignQ()}&group_by=hour,kind` });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json() as AggregationResponse;
      expect(body.axes).toEqual(['hour', 'kind']);
      expect(body.rows).toHaveLength(3 * 2);
      for (const row of body.rows) {
        const [hour, kind] = row.keys as [string, string];
        const group = w.expected.filter(
          (e) =>
            e.kind === kind &&
            new Date(Math.floor(e.sendAt.getTime() / 3_600_000) * 3_600_000).toISOString() === hour,
        );
        const t = tally(group);
        expect(row.n).toBe(t.n);
        expect(row.missing).toBe(t.missing);
        expect(row.missing_rate).toBeCloseTo(t.missing / t.n, 10);
        const [lo, hi] = wilson(t.missing, t.n, 0.95);
        expect(row.missing_interval).toEqual({ low: lo, high: hi });
        expect(row.adverse_rate).toBeCloseTo((t.n - t.delivered) / t.n, 10);
      }
      const tests = body.rows.filter((r) => r.keys[1] === 'test');
      const controls = body.rows.filter((r) => r.keys[1] === 'control');
      expect(Math.min(...tests.map((r) => r.missing_rate ?? 0))).toBeGreaterThan(
        Math.max(...controls.map((r) => r.missing_rate ?? 1)),
      );
    });

    it('counts by minute: every outcome in the bucket of its send minute', async () => {
      const res = await app.inject({ url: `/api/v1/aggregation?${campaignQ()}&group_by=minute` });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json() as AggregationResponse;
      const expected = new Map<string, number>();
      for (const e of w.expected) {
        const minute = new Date(Math.floor(e.sendAt.getTime() / 60_000) * 60_000).toISOString();
        expected.set(minute, (expected.get(minute) ?? 0) + 1);
      }
      expect(new Map(body.rows.map((r) => [r.keys[0] as string, r.n]))).toEqual(expected);
    });

    it('groups by sender and recipient region, one conversation kind at a time', async () => {
      const res = await app.inject({
        url: `/api/v1/aggregation?${campaignQ()}&group_by=sender_region,recipient_region&conversation_kind=group&kind=test&terms=${encodeURIComponent(JSON.stringify(SENSITIVE))}`,
      });
      const body = res.json() as AggregationResponse;
      const cell = (s: string, r: string) => body.rows.find((x) => x.keys[0] === s && x.keys[1] === r);
      expect(cell('US', 'CN')?.missing_rate).toBe(1);
      expect(cell('US', 'AU')?.missing_rate).toBeLessThan(1);
      expect(cell('CN', 'US')?.missing_rate).toBe(0);
      expect(cell('US', 'US')).toBeUndefined();
    });

    it('keys term sets by their JSON array and writes CSV on format=csv or Accept: text/csv', async () => {
      const json = (
        await app.inject({ url: `/api/v1/aggregation?${campaignQ()}&group_by=term_set` })
      ).json() as AggregationResponse;
      expect(json.rows.map((r) => r.keys[0])).toContain(JSON.stringify(XSS));
      for (const url of [
        `/api/v1/aggregation?${campaignQ()}&group_by=term_set&format=csv`,
        `/api/v1/aggregation?${campaignQ()}&group_by=term_set`,
      ]) {
        const res = await app.inject({ url, headers: { accept: 'text/csv' } });
        expect(res.headers['content-type']).toMatch(/^text\/csv/);
        const table = parseCsv(res.body);
        expect(table[0]?.slice(0, 3)).toEqual(['term_set', 'n', 'delivered']);
        expect(
          table
            .slice(1)
            .map((r) => r[0])
            .sort(),
        ).toEqual(json.rows.map((r) => r.keys[0]).sort());
        const xssRow = table.find((r) => r[0] === JSON.stringify(XSS));
        const xssJson = json.rows.find((r) => r.keys[0] === JSON.stringify(XSS));
        expect(Number(xssRow?.[1])).toBe(xssJson?.n);
      }
    });

    it('refuses an unknown axis and the same axis twice', async () => {
      expect((await app.inject({ url: '/api/v1/aggregation?group_by=colour' })).statusCode).toBe(400);
      expect((await app.inject({ url: '/api/v1/aggregation?group_by=day,day' })).statusCode).toBe(400);
      expect((await app.inject({ url: '/api/v1/aggregation' })).statusCode).toBe(400);
    });

    it('draws latency histograms of tests and controls from arrived outcomes', async () => {
      const res = await app.inject({ url: `/api/v1/latency?${campaignQ()}` });
      const body = res.json() as LatencyResponse;
      for (const s of body.series) {
        const arrived = w.expected.filter(
          (e) =>
            e.kind === s.kind && e.latencyMs !== null && (e.status === 'delivered' || e.status === 'delayed'),
        );
        expect(s.n).toBe(arrived.length);
        expect(s.counts.reduce((a, b) => a + b, 0)).toBe(arrived.length);
      }
      const test = body.series.find((s) => s.kind === 'test')!;
      const control = body.series.find((s) => s.kind === 'control')!;
      // The delayed term set pushes test latencies into the 60–300 s bin; controls never get there.
      const slow = body.bins.findIndex((b) => b.lo_ms === 60_000);
      expect(test.counts[slow]).toBeGreaterThan(0);
      expect(control.counts[slow]).toBe(0);
      expect(test.p99_ms).toBeGreaterThan(control.p99_ms ?? Infinity);
      // A campaign filter: served from the rollups (decision 032), quantiles from their histogram.
      expect(body.quantile_error).toBeCloseTo(2 ** (1 / 8) - 1, 12);
      // A probe filter: only the outcomes hold it, quantiles exact.
      const byProbe = await app.inject({ url: `/api/v1/latency?${campaignQ()}&probe=${randomUUID()}` });
      expect(byProbe.statusCode).toBe(200);
      expect((byProbe.json() as LatencyResponse).quantile_error).toBe(0);
      const csv = await app.inject({ url: `/api/v1/latency?${campaignQ()}&format=csv` });
      expect(parseCsv(csv.body)[0]).toEqual(['lo_ms', 'hi_ms', 'test', 'control']);
    });

    it('summarises every term set with both arms, verdict and onset', async () => {
      await insertFinding(getDb().db, {
        campaignId: w.campaignId,
        termSet: DELAYED,
        scope: { platform: 'testbed' },
        windowStart: w.start,
        windowEnd: w.end,
        verdict: 'delayed',
        testTrials: 18,
        controlTrials: 18,
        testRate: 1,
        controlRate: 0,
        pValue: 0.001,
        qValue: 0.004,
        ciLow: 0.7,
        ciHigh: 1,
      });
      const res = await app.inject({ url: `/api/v1/term-sets?${campaignQ()}` });
      const body = res.json() as TermSetsResponse;
      expect(body.term_sets).toHaveLength(6);
      const xss = body.term_sets.find((t) => t.terms_key === JSON.stringify(XSS))!;
      expect(xss.term_set).toEqual(XSS);
      expect(xss.test.missing_rate).toBe(1);
      expect(xss.test.n).toBe(tally(w.expected.filter((e) => e.termSet === XSS && e.kind === 'test')).n);
      const delayed = body.term_sets.find((t) => t.terms_key === JSON.stringify(DELAYED))!;
      expect(delayed.verdict).toBe('delayed');
      expect(delayed.onset_at).toBe(w.start.toISOString());
      expect(xss.verdict).toBeNull();
    });
  });

  describe('findings', () => {
    it('returns evidence, onset and end, and the minimal term sets found by isolation', async () => {
      const scope = {
        platform: 'testbed',
        sender_region: 'US',
        recipient_region: 'CN',
        conversation_kind: 'group',
      };
      const base = {
        campaignId: w.campaignId,
        scope,
        windowStart: new Date('2026-06-04T00:00:00Z'),
        windowEnd: new Date('2026-06-05T00:00:00Z'),
        testTrials: 40,
        controlTrials: 40,
        testRate: 0.95,
        controlRate: 0.02,
        pValue: 1e-9,
        qValue: 1e-8,
        ciLow: 0.8,
        ciHigh: 0.99,
      };
      const combo = await insertFinding(getDb().db, {
        ...base,
        termSet: ['709', '律师', '维权'],
        verdict: 'suppressed',
        independentProbes: {
          test: { probes: 3, asns: 2, independent: 2 },
          control: { probes: 3, asns: 2, independent: 1 },
        },
      });
      await insertFinding(getDb().db, { ...base, termSet: ['709', '律师'], verdict: 'suppressed' });
      await insertFinding(getDb().db, { ...base, termSet: ['律师'], verdict: 'none' });
      const monitored = await insertFinding(getDb().db, {
        ...base,
        termSet: ['709', '律师'],
        scope: { ...scope, conversation_kind: 'direct' },
        verdict: 'suppressed',
        since: new Date('2026-06-04T06:30:00Z'),
        endedAt: new Date('2026-06-04T18:00:00Z'),
      });
      const res = await app.inject({
        url: `/api/v1/findings?${campaignQ()}&verdict=suppressed&recipient_region=CN&from=2026-06-04T12:00:00Z&to=2026-06-04T13:00:00Z`,
      });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json() as FindingsResponse;
      expect(body.findings.map((f) => f.term_set).sort((a, b) => a.length - b.length)).toEqual([
        ['709', '律师'],
        ['709', '律师'],
        ['709', '律师', '维权'],
      ]);
      // A change point, where the analysis found one, is the onset and end researchers see.
      const m = body.findings.find((x) => x.id === monitored)!;
      expect([m.onset_at, m.end_at]).toEqual(['2026-06-04T06:30:00.000Z', '2026-06-04T18:00:00.000Z']);
      const f = body.findings.find((x) => x.id === combo)!;
      expect(f.minimal_term_sets).toEqual([['709', '律师']]);
      expect(f.onset_at).toBe('2026-06-04T00:00:00.000Z');
      expect(f.end_at).toBe('2026-06-05T00:00:00.000Z');
      expect(f.evidence).toEqual({
        test_trials: 40,
        control_trials: 40,
        test_rate: 0.95,
        control_rate: 0.02,
        interval: { low: 0.8, high: 0.99 },
        p_value: 1e-9,
        q_value: 1e-8,
        method: 'paired',
        independent_probes: {
          test: { probes: 3, asns: 2, independent: 2 },
          control: { probes: 3, asns: 2, independent: 1 },
        },
      });
      expect(body.findings.find((x) => x.id === monitored)?.evidence.independent_probes).toBeNull();
      expect(f.scope).toEqual(scope);
      const outOfScope = await app.inject({
        url: `/api/v1/findings?${campaignQ()}&verdict=suppressed&recipient_region=AU`,
      });
      expect(
        (outOfScope.json() as FindingsResponse).findings.filter((x) => x.scope.recipient_region === 'CN'),
      ).toEqual([]);
    });

    it('pages findings by cursor without repeats', async () => {
      const all = (
        await app.inject({ url: `/api/v1/findings?${campaignQ()}&limit=1000` })
      ).json() as FindingsResponse;
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: FindingsResponse = (
          await app.inject({
            url: `/api/v1/findings?${campaignQ()}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
          })
        ).json();
        seen.push(...page.findings.map((f) => f.id));
        cursor = page.next_cursor;
      } while (cursor);
      expect(seen).toEqual(all.findings.map((f) => f.id));
      expect(seen.length).toBeGreaterThan(2);
    });
  });

  describe('probes', () => {
    it('reports check-in, clock and accounts, and never an address, key, label or handle', async () => {
      const res = await app.inject({ url: '/api/v1/probes' });
      expect(res.statusCode).toBe(200);
      const body = res.json() as {
        probes: {
          id: string;
          country: string;
          last_checkin_at: string | null;
          outbox_backlog: number | null;
          accounts: { region: string; state: string }[];
        }[];
      };
      const cn = body.probes.find((p) => p.id === w.probes.cn.id)!;
      expect(cn.country).toBe('CN');
      expect(cn.last_checkin_at).not.toBeNull();
      expect(cn.outbox_backlog).toBe(0);
      expect(cn.accounts.map((a) => a.region)).toEqual(['CN', 'CN']);
      expect(cn.accounts.every((a) => a.state === 'active')).toBe(true);
      expect(res.body).not.toMatch(/\b\d{1,3}(\.\d{1,3}){3}\b/);
      expect(res.body).not.toMatch(/::1|127\.0\.0\.1|localhost/);
      expect(res.body).not.toMatch(/"(handle|label|public_key|ip|address|remote_address)"/);
      expect(res.body).not.toContain('alice-');
    });
  });
});
