/**
 * The built dashboard in real headless Chromium (puppeteer-core) against a collector
 * filled through the real ingest path: every view loads without console errors, every
 * chart draws data that agree with the research API, a screenshot of each view lands
 * in test-output/dashboard/, CSV downloads carry the chart's data, and a term made of
 * markup and SQL is stored verbatim and shown as inert text.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../collector/db/open.ts';
import { insertFinding } from '../collector/db/research-fixtures.ts';
import { buildDashboard } from '../collector/http/dashboard-build.ts';
import {
  buildResearchApp,
  buildResearchWorld,
  type ResearchWorld,
  SENSITIVE,
  XSS,
} from '../collector/routes/research-fixture.ts';
import { openTestDatabase } from '../collector/test-support/db.ts';
import { checkinBody, signedPost } from '../collector/test-support/probe.ts';
import type {
  AggregationResponse,
  LatencyResponse,
  ProbesHealthResponse,
  TermSetsResponse,
} from '../protocol/research.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const OUT = resolve(dirname(fileURLToPath(import.meta.url)), '../test-output/dashboard');
const available = existsSync(CHROMIUM);
const requireAll = process.env.SILENTDROP_REQUIRE_ALL === '1';

type Table = string[][];

async function panelTable(page: Page, chart: string): Promise<Table> {
  return page.$$eval(`[data-chart="${chart}"] table.data tbody tr`, (trs) =>
    trs.map((tr) => [...(tr as HTMLTableRowElement).cells].map((td) => td.textContent ?? '')),
  );
}

/** Non-background pixels of the chart's canvas: an empty chart has (almost) none. */
async function inkedPixels(page: Page, chart: string): Promise<number> {
  return page.$eval(`[data-chart="${chart}"] canvas`, (canvas) => {
    const c = canvas as HTMLCanvasElement;
    const ctx = c.getContext('2d');
    if (!ctx) return 0;
    const { data } = ctx.getImageData(0, 0, c.width, c.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i]!, data[i + 1]!, data[i + 2]!, data[i + 3]!];
      if (a > 0 && !(r > 245 && g > 245 && b > 245)) n++;
    }
    return n;
  });
}

const num = (s: string | undefined) => (s === undefined || s === '' ? null : Number(s));

if (!available) {
  if (requireAll) {
    describe('dashboard in Chromium', () => {
      it('needs Chromium (SILENTDROP_REQUIRE_ALL=1)', () => {
        throw new Error(`Chromium not found at ${CHROMIUM}`);
      });
    });
  } else {
    describe.skip(`dashboard in Chromium [SKIPPED: no Chromium at ${CHROMIUM}; set CHROMIUM_PATH]`, () => {
      it('skipped', () => {});
    });
  }
} else {
  describe('dashboard in Chromium', () => {
    let database: Database & { cleanup(): Promise<void> };
    let app: FastifyInstance;
    let w: ResearchWorld;
    let browser: Browser;
    let base: string;
    let distDir: string;
    const downloads = mkdtempSync(join(tmpdir(), 'sd-downloads-'));
    const api = async <T>(url: string) => (await app.inject({ url })).json() as T;

    beforeAll(async () => {
      mkdirSync(OUT, { recursive: true });
      distDir = await buildDashboard({ outDir: mkdtempSync(join(tmpdir(), 'sd-dashboard-dist-')) });
      database = await openTestDatabase({ name: 'pglite' });
      app = await buildResearchApp(database.db, { dashboardDir: distDir });
      w = await buildResearchWorld(app, database.db, { hours: 6 });
      // Health worth drawing: the CN probe reports a backlog, dead letters and a clock estimate.
      const res = await signedPost(
        app,
        w.probes.cn,
        '/probe/v1/checkin',
        checkinBody([], [], {
          outbox_backlog: 17,
          dead_letters: 2,
          clock: { offset_ms: -412.5, rtt_ms: 38, measured_at: new Date().toISOString() },
          storage: { state: 'full', since: new Date().toISOString(), code: 'ENOSPC' },
        }),
      );
      expect(res.statusCode, res.body).toBe(200);
      await insertFinding(database.db, {
        campaignId: w.campaignId,
        termSet: SENSITIVE,
        scope: {
          platform: 'testbed',
          sender_region: 'US',
          recipient_region: 'CN',
          conversation_kind: 'group',
        },
        windowStart: new Date(w.start.getTime() + 3_600_000),
        windowEnd: w.end,
        verdict: 'suppressed',
        testTrials: 12,
        controlTrials: 12,
        testRate: 1,
        controlRate: 0,
        pValue: 1e-6,
        qValue: 1e-5,
        ciLow: 0.7,
        ciHigh: 1,
        independentProbes: {
          test: { probes: 3, asns: 2, independent: 2 },
          control: { probes: 3, asns: 2, independent: 2 },
        },
      });
      await app.listen({ port: 0, host: '127.0.0.1' });
      base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      browser = await puppeteer.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
      const session = await browser.target().createCDPSession();
      await session.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
    }, 300_000);

    afterAll(async () => {
      await browser?.close();
      await app?.close();
      await database?.cleanup();
      rmSync(downloads, { recursive: true, force: true });
      if (distDir) rmSync(distDir, { recursive: true, force: true });
    });

    /** Opens a view and collects every console error, page error, failed request and dialog. */
    async function open(hash: string, view: string) {
      const page = await browser.newPage();
      await page.setViewport({ width: 1400, height: 1000 });
      const problems: string[] = [];
      const dialogs: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${(e as Error).message}`));
      page.on('requestfailed', (r) => problems.push(`requestfailed: ${r.url()}`));
      page.on('response', (r) => {
        if (r.status() >= 400) problems.push(`http ${r.status()}: ${r.url()}`);
      });
      page.on('dialog', async (d) => {
        dialogs.push(d.message());
        await d.dismiss();
      });
      await page.goto(`${base}/${hash}`, { waitUntil: 'networkidle0' });
      await page.waitForSelector(`body[data-ready="${view}"]`, { timeout: 30_000 });
      return { page, problems, dialogs };
    }

    async function screenshot(page: Page, name: string) {
      const path = join(OUT, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      expect(statSync(path).size).toBeGreaterThan(10_000);
    }

    async function downloadedCsv(page: Page, chart: string): Promise<string[][]> {
      const before = new Set(readdirSync(downloads));
      await page.click(`[data-csv="${chart}"]`);
      for (let i = 0; i < 100; i++) {
        const fresh = readdirSync(downloads).filter((f) => !before.has(f) && f.endsWith('.csv'));
        if (fresh[0]) {
          const text = readFileSync(join(downloads, fresh[0]), 'utf8');
          return text
            .trimEnd()
            .split('\r\n')
            .map((l) => l.split(','));
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no CSV downloaded for ${chart}`);
    }

    it('Overview draws tests against controls per hour as the API counts them, with the URL holding the filters', async () => {
      const { page, problems } = await open(`#/overview?campaign=${w.campaignId}&grain=hour`, 'overview');
      const agg = await api<AggregationResponse>(
        `/api/v1/aggregation?campaign=${w.campaignId}&group_by=hour,kind`,
      );
      const table = await panelTable(page, 'overview');
      expect(table.length).toBe(agg.rows.length);
      expect(table.length).toBeGreaterThanOrEqual(12);
      for (const row of agg.rows) {
        const shown = table.find((r) => r[0] === row.keys[0] && r[1] === row.keys[1]);
        expect(shown, JSON.stringify(row.keys)).toBeDefined();
        expect(num(shown?.[2])).toBe(row.n);
        expect(num(shown?.[3])).toBe(row.missing);
        expect(num(shown?.[4])).toBeCloseTo(row.missing_rate ?? Number.NaN, 10);
      }
      expect(await inkedPixels(page, 'overview')).toBeGreaterThan(2000);
      expect(await page.$eval('select[name="campaign"]', (s) => (s as HTMLSelectElement).value)).toBe(
        w.campaignId,
      );
      const csv = await downloadedCsv(page, 'overview');
      expect(csv[0]).toEqual([
        'hour',
        'kind',
        'n',
        'missing',
        'missing_rate',
        'ci_low',
        'ci_high',
        'adverse_rate',
      ]);
      expect(csv.length - 1).toBe(agg.rows.length);
      await screenshot(page, 'overview');
      expect(problems).toEqual([]);
      await page.close();
    });

    it('Overview picks its grain when none is asked: hours for the whole run, minutes for a short span', async () => {
      const grainOf = async (hash: string) => {
        const { page, problems } = await open(hash, 'overview');
        const grain = await page.$eval('select[name="grain"]', (s) => (s as HTMLSelectElement).value);
        const first = (await panelTable(page, 'overview'))[0]?.[0] ?? '';
        expect(problems).toEqual([]);
        await page.close();
        return { grain, first };
      };
      expect((await grainOf(`#/overview?campaign=${w.campaignId}`)).grain).toBe('hour');
      const from = new Date(w.end.getTime() - 90 * 60_000).toISOString();
      const short = await grainOf(
        `#/overview?campaign=${w.campaignId}&from=${encodeURIComponent(from)}&to=${encodeURIComponent(w.end.toISOString())}`,
      );
      expect(short.grain).toBe('minute');
      expect(short.first).not.toBe('');
    });

    it('Terms shows how many independent probes gave a finding its evidence', async () => {
      const { page, problems } = await open(
        `#/terms?campaign=${w.campaignId}&terms=${encodeURIComponent(JSON.stringify(SENSITIVE))}`,
        'terms',
      );
      await page.waitForSelector('table[data-table="findings"]');
      const cells = await page.$$eval('table[data-table="findings"] tbody tr', (trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
      );
      expect(cells).toContainEqual([
        'US → CN, group',
        'suppressed',
        'no',
        '12',
        '2 independent (2 ASNs, 3 probes)',
        '2 independent (2 ASNs, 3 probes)',
      ]);
      expect(problems).toEqual([]);
      await page.close();
    });

    it("Terms counts the filter bar's range in the whole UTC hours it touches, and says so", async () => {
      const HOUR = 3_600_000;
      // a range on the minute, within the world's hours: hh+1:10 to hh+3:30
      const from = new Date(Math.floor(w.start.getTime() / HOUR) * HOUR + HOUR + 10 * 60_000);
      const to = new Date(from.getTime() + 2 * HOUR + 20 * 60_000);
      const hourFrom = new Date(Math.floor(from.getTime() / HOUR) * HOUR).toISOString();
      const hourTo = new Date(Math.ceil(to.getTime() / HOUR) * HOUR).toISOString();
      const enc = encodeURIComponent;
      const { page, problems } = await open(
        `#/terms?campaign=${w.campaignId}&from=${enc(from.toISOString())}&to=${enc(to.toISOString())}&terms=${enc(JSON.stringify(SENSITIVE))}`,
        'terms',
      );
      expect(await page.$eval('[data-stat="whole-hours"]', (e) => e.textContent)).toBe(
        `counted in whole hours (UTC): ${hourFrom.slice(0, 16).replace('T', ' ')}Z to ${hourTo.slice(0, 16).replace('T', ' ')}Z`,
      );
      // the list, and the chosen term set's timeline, outcomes and findings, were asked for those hours (the
      // filter bar's choices are asked without a range)
      const asked = await page.evaluate(() =>
        performance
          .getEntriesByType('resource')
          .map((e) => new URL(e.name))
          .filter((u) => u.pathname === '/api/v1/term-sets' || u.searchParams.has('terms'))
          .map((u) => [u.pathname, u.searchParams.get('from'), u.searchParams.get('to')]),
      );
      expect(asked.map(([path]) => path).sort()).toEqual(
        ['/api/v1/aggregation', '/api/v1/findings', '/api/v1/outcomes', '/api/v1/term-sets'].sort(),
      );
      for (const [, f, t] of asked) expect([f, t]).toEqual([hourFrom, hourTo]);
      const sets = await api<TermSetsResponse>(
        `/api/v1/term-sets?campaign=${w.campaignId}&from=${enc(hourFrom)}&to=${enc(hourTo)}`,
      );
      expect(sets.term_sets.length).toBeGreaterThan(0);
      const rows = await page.$$eval('#term-table tbody tr', (trs) =>
        trs.map((tr) => tr.getAttribute('data-terms-key')),
      );
      expect(rows.sort()).toEqual(sets.term_sets.map((t) => t.terms_key).sort());
      expect(problems).toEqual([]);
      await page.close();
    });

    it('Terms lists every term set, shows the markup-and-SQL term as inert text, and opens its timeline', async () => {
      const { page, problems, dialogs } = await open(
        `#/terms?campaign=${w.campaignId}&sort=test_rate&dir=desc`,
        'terms',
      );
      const sets = await api<TermSetsResponse>(`/api/v1/term-sets?campaign=${w.campaignId}`);
      const rows = await page.$$eval('#term-table tbody tr', (trs) =>
        trs.map((tr) => tr.getAttribute('data-terms-key')),
      );
      expect(rows.sort()).toEqual(sets.term_sets.map((t) => t.terms_key).sort());
      const shownTerms = await page.$$eval('#term-table td.col-terms', (tds) =>
        tds.map((td) => td.textContent),
      );
      expect(shownTerms).toContain(XSS.join(' + '));
      const sensitive = sets.term_sets.find((t) => t.terms_key === JSON.stringify(SENSITIVE))!;
      const verdict = await page.evaluate(
        (key) =>
          [...document.querySelectorAll<HTMLTableRowElement>('#term-table tbody tr')]
            .find((tr) => tr.dataset.termsKey === key)
            ?.querySelector('td.col-verdict')?.textContent,
        JSON.stringify(SENSITIVE),
      );
      expect(verdict).toBe(sensitive.verdict);

      // Open the XSS term set: its row, detail heading and timeline, still text.
      await page.evaluate((key) => {
        [...document.querySelectorAll<HTMLTableRowElement>('#term-table tbody tr')]
          .find((tr) => tr.dataset.termsKey === key)
          ?.click();
      }, JSON.stringify(XSS));
      await page.waitForSelector('[data-chart="term-timeline"]');
      await page.waitForFunction(
        () =>
          document.body.dataset.ready === 'terms' &&
          document.querySelector('.view')?.getAttribute('aria-busy') === 'false',
      );
      expect(new URLSearchParams(new URL(page.url()).hash.split('?')[1]).get('terms')).toBe(
        JSON.stringify(XSS),
      );
      const heading = await page.$eval('.detail h2 q', (q) => q.textContent);
      expect(heading).toBe(XSS.join(' + '));
      const injected = await page.evaluate(() => ({
        imgs: document.querySelectorAll('img').length,
        xss: (window as unknown as { __xss?: number }).__xss,
        raw: document.body.innerHTML.includes('<img src=x'),
      }));
      expect(injected).toEqual({ imgs: 0, xss: undefined, raw: false });
      expect(await inkedPixels(page, 'term-timeline')).toBeGreaterThan(500);
      const timeline = await panelTable(page, 'term-timeline');
      const agg = await api<AggregationResponse>(
        `/api/v1/aggregation?campaign=${w.campaignId}&group_by=hour,kind&terms=${encodeURIComponent(JSON.stringify(XSS))}`,
      );
      expect(timeline.map((r) => [r[0], r[1], num(r[2]), num(r[3])])).toEqual(
        agg.rows.map((r) => [r.keys[0], r.keys[1], r.n, r.missing]),
      );
      // Hover the chart: the tooltip (HTML) must not turn text into markup either.
      const box = await (await page.$('[data-chart="term-timeline"] .chart'))!.boundingBox();
      if (box) await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      expect(await page.evaluate(() => document.querySelectorAll('img').length)).toBe(0);
      await screenshot(page, 'terms');
      // The chosen term set follows to the other views, as text in the filter bar.
      await page.click('nav a[data-view="regions"]');
      await page.waitForSelector('body[data-ready="regions"]');
      expect(await page.$eval('[data-filter="terms"] q', (q) => q.textContent)).toBe(XSS.join(' + '));
      const group = await panelTable(page, 'regions-group');
      expect(group.every((r) => r[4] === '1')).toBe(true);
      expect(await page.evaluate(() => document.querySelectorAll('img').length)).toBe(0);
      expect(dialogs).toEqual([]);
      expect(problems).toEqual([]);
      await page.close();
    });

    it('Regions draws direct and group matrices that match the API, US→CN group suppressed', async () => {
      const { page, problems } = await open(`#/regions?campaign=${w.campaignId}`, 'regions');
      for (const kind of ['direct', 'group'] as const) {
        const agg = await api<AggregationResponse>(
          `/api/v1/aggregation?campaign=${w.campaignId}&group_by=sender_region,recipient_region&kind=test&conversation_kind=${kind}`,
        );
        const table = await panelTable(page, `regions-${kind}`);
        expect(table.map((r) => [r[0], r[1], num(r[2]), num(r[3])])).toEqual(
          agg.rows.map((r) => [r.keys[0], r.keys[1], r.n, r.missing]),
        );
        expect(await inkedPixels(page, `regions-${kind}`)).toBeGreaterThan(500);
      }
      const group = await panelTable(page, 'regions-group');
      const usCn = group.find((r) => r[0] === 'US' && r[1] === 'CN');
      const cnUs = group.find((r) => r[0] === 'CN' && r[1] === 'US');
      expect(num(usCn?.[4])).toBeGreaterThan(num(cnUs?.[4]) ?? 1);
      const csv = await downloadedCsv(page, 'regions-group');
      expect(csv.length - 1).toBe(group.length);
      await screenshot(page, 'regions');
      expect(problems).toEqual([]);
      await page.close();
    });

    it('Latency draws the histograms of tests and controls the API reports', async () => {
      const { page, problems } = await open(`#/latency?campaign=${w.campaignId}`, 'latency');
      const body = await api<LatencyResponse>(`/api/v1/latency?campaign=${w.campaignId}`);
      const table = await panelTable(page, 'latency');
      expect(table.length).toBe(body.bins.length);
      table.forEach((r, i) => {
        expect(num(r[2])).toBe(body.series[0]?.counts[i]);
        expect(num(r[3])).toBe(body.series[1]?.counts[i]);
      });
      expect(body.series.every((s) => s.n > 0)).toBe(true);
      // The campaign filter is held by the rollups: quantiles from their histogram, and said so.
      expect(body.quantile_error).toBeGreaterThan(0);
      expect(await page.$eval('#latency-quantile-note', (el) => el.textContent)).toContain('within 9.1 %');
      expect(await inkedPixels(page, 'latency')).toBeGreaterThan(1000);
      await screenshot(page, 'latency');
      expect(problems).toEqual([]);
      await page.close();
    });

    it('Probes shows check-in, clock offset, accounts, backlog and a full data folder as reported', async () => {
      const { page, problems } = await open('#/probes', 'probes');
      const body = await api<ProbesHealthResponse>('/api/v1/probes');
      const rows = await page.$$eval('#probe-table tbody tr', (trs) =>
        trs.map((tr) => tr.getAttribute('data-probe')),
      );
      expect(rows).toEqual(body.probes.map((p) => p.id));
      const cn = await page.$eval(`#probe-table tr[data-probe="${w.probes.cn.id}"]`, (tr) =>
        [...(tr as HTMLTableRowElement).cells].map((td) => td.textContent ?? ''),
      );
      expect(cn[2]).toContain('-412 ms');
      expect(cn[3]).toBe('17');
      expect(cn[4]).toBe('2');
      expect(cn[5]).toMatch(/^full since /);
      expect(cn[6]).toContain('testbed CN: active');
      const us = await page.$eval(`#probe-table tr[data-probe="${w.probes.us.id}"]`, (tr) =>
        [...(tr as HTMLTableRowElement).cells].map((td) => td.textContent ?? ''),
      );
      expect(us[5]).toBe('ok');
      const chart = await panelTable(page, 'probes');
      expect(chart.find((r) => r[0] === w.probes.cn.id)?.[6]).toBe('17');
      expect(await inkedPixels(page, 'probes')).toBeGreaterThan(200);
      await screenshot(page, 'probes');
      expect(problems).toEqual([]);
      await page.close();
    });
  });
}
