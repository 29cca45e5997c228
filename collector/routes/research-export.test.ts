import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTCOME_COLUMNS } from '../../protocol/research.ts';
import { insertBulkOutcomes } from '../db/research-fixtures.ts';
import { describeEachDb } from '../test-support/db.ts';
import { buildResearchApp, buildResearchWorld, type ResearchWorld } from './research-fixture.ts';

/** Outcomes in the large table (canaries × 2 recipients); SILENTDROP_EXPORT_ROWS overrides. */
const ROWS = Number(process.env.SILENTDROP_EXPORT_ROWS ?? 200_000);
const MB = 1024 * 1024;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Measured {
  lines: number;
  bytes: number;
  /** Peak growth over the baseline while streaming, bytes. */
  heapGrowth: number;
  rssGrowth: number;
  /** Lines out of keyset order (or repeated): must be 0. */
  disorder: number;
  first: string;
}

/** Streams the export over real HTTP, keeping nothing but counters and the previous line's key. */
function streamExport(
  base: string,
  path: string,
  keyOf: (line: string) => string,
  pauseMs = 0,
): Promise<Measured> {
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const rss0 = process.memoryUsage().rss;
  return new Promise((resolve, reject) => {
    const m: Measured = { lines: 0, bytes: 0, heapGrowth: 0, rssGrowth: 0, disorder: 0, first: '' };
    let rest = '';
    let prev = '';
    let chunks = 0;
    const req = request(`${base}${path}`, (res) => {
      if (res.statusCode !== 200) reject(new Error(`export: ${res.statusCode}`));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        m.bytes += Buffer.byteLength(chunk);
        const parts = (rest + chunk).split('\n');
        rest = parts.pop() ?? '';
        for (const line of parts) {
          if (m.lines === 0) m.first = line;
          else {
            const k = keyOf(line);
            if (k <= prev) m.disorder += 1;
            prev = k;
          }
          m.lines += 1;
        }
        chunks += 1;
        if (chunks % 50 === 0) {
          // Live memory: collect garbage first, so only what is retained counts.
          gc();
          const mem = process.memoryUsage();
          m.heapGrowth = Math.max(m.heapGrowth, mem.heapUsed - heap0);
          m.rssGrowth = Math.max(m.rssGrowth, mem.rss - rss0);
        }
        if (pauseMs > 0 && chunks === 3) {
          // A slow client: the server must stop reading batches while the socket is full.
          res.pause();
          setTimeout(() => {
            gc();
            const mem = process.memoryUsage();
            m.heapGrowth = Math.max(m.heapGrowth, mem.heapUsed - heap0);
            res.resume();
          }, pauseMs);
        }
      });
      res.on('end', () => {
        const mb = (n: number) => (n / MB).toFixed(1);
        process.stdout.write(
          `export ${path.slice(0, 60)}…: ${m.lines} lines, ${mb(m.bytes)} MB, live heap +${mb(m.heapGrowth)} MB, rss +${mb(m.rssGrowth)} MB\n`,
        );
        resolve(m);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describeEachDb('research API: bulk export', (getDb) => {
  let app: FastifyInstance;
  let w: ResearchWorld;
  let base: string;

  beforeAll(async () => {
    app = await buildResearchApp(getDb().db);
    w = await buildResearchWorld(app, getDb().db, { hours: 1 });
    // The world's group conversation, as the API reports it.
    const first = await app.inject({
      url: `/api/v1/outcomes?campaign=${w.campaignId}&conversation_kind=group&limit=1`,
    });
    const conversationId = (first.json() as { outcomes: { conversation_id: string }[] }).outcomes[0]!
      .conversation_id;
    const n = await insertBulkOutcomes(getDb().db, {
      campaignId: w.campaignId,
      senderAccountId: w.accountIds.alice,
      conversationId,
      recipientAccountIds: [w.accountIds.bob, w.accountIds.carol],
      canaries: ROWS / 2,
      // Before the world's rounds, all past their deadlines: a sealed canary matches no terms filter.
      start: new Date(w.start.getTime() - (ROWS / 2) * 1000 - 3_600_000),
      stepMs: 1000,
      termSet: ['bulk', '导出'],
    });
    expect(n).toBe(ROWS);
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  }, 600_000);
  afterAll(async () => {
    await app.close();
  });

  const total = () => ROWS + w.expected.length;

  it('streams every outcome as CSV with flat memory', async () => {
    const m = await streamExport(base, `/api/v1/export?campaign=${w.campaignId}&format=csv`, () => '', 0);
    expect(m.first).toBe(OUTCOME_COLUMNS.join(',').concat('\r'));
    expect(m.lines).toBe(total() + 1);
    expect(m.bytes).toBeGreaterThan(ROWS * 300);
    // Holding the export would take at least its size; streaming stays far below it.
    expect(m.heapGrowth).toBeLessThan(Math.max(64 * MB, m.bytes / 4));
    expect(m.rssGrowth).toBeLessThan(Math.max(160 * MB, m.bytes));
  }, 600_000);

  it('streams NDJSON to a slow client without reading ahead, each row once in keyset order', async () => {
    const keyOf = (line: string) => {
      // send_at as written (RFC 3339, milliseconds: sorts as text), then the ids
      const o = JSON.parse(line) as { send_at: string; canary_id: string; recipient_account_id: string };
      return `${o.send_at}|${o.canary_id}|${o.recipient_account_id}`;
    };
    const m = await streamExport(base, `/api/v1/export?campaign=${w.campaignId}`, keyOf, 1500);
    expect(m.lines).toBe(total());
    expect(m.disorder).toBe(0);
    expect(m.heapGrowth).toBeLessThan(Math.max(64 * MB, m.bytes / 4));
    const filtered = await streamExport(
      base,
      `/api/v1/export?campaign=${w.campaignId}&status=missing&terms=${encodeURIComponent('["bulk","导出"]')}`,
      keyOf,
    );
    expect(filtered.lines).toBeGreaterThan(ROWS / 20);
    expect(filtered.lines).toBeLessThan(ROWS / 4);
    expect(filtered.disorder).toBe(0);
  }, 600_000);

  describe('format negotiation', () => {
    it('answers CSV to Accept: text/csv and names the file', async () => {
      const res = await app.inject({
        url: `/api/v1/export?campaign=${w.campaignId}&kind=test&terms=${encodeURIComponent(JSON.stringify(['天气']))}`,
        headers: { accept: 'text/csv' },
      });
      expect(res.headers['content-type']).toMatch(/^text\/csv/);
      expect(res.headers['content-disposition']).toContain('silentdrop-outcomes.csv');
      const lines = res.body.trimEnd().split('\r\n');
      expect(lines.length - 1).toBe(
        w.expected.filter((e) => e.kind === 'test' && e.termSet[0] === '天气').length,
      );
    });
  });
});
