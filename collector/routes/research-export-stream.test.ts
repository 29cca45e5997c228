/**
 * The export streamed from the database (decision 026): its lines, built in SQL, equal the
 * API's records rendered in JavaScript byte for byte, hostile text included; a client that
 * goes away or stalls releases the connection and ends the query; a failure after the
 * first bytes cuts the connection, so a client sees the answer as broken, never complete.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type IncomingMessage, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'drizzle-orm';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTCOME_COLUMNS, type OutcomeRecord, type OutcomesPage } from '../../protocol/research.ts';
import { buildApp } from '../app.ts';
import { rows } from '../db/open.ts';
import {
  EXPORT_CSV_COLUMNS,
  EXPORT_JSON_KEYS,
  serverPool,
  windowedExportStream,
} from '../db/research-export.ts';
import { isoMicros, type OutcomeFilter, textArray } from '../db/research-filters.ts';
import { insertBulkOutcomes } from '../db/research-fixtures.ts';
import { readOutcomes } from '../db/research-outcomes.ts';
import { describeEachDb } from '../test-support/db.ts';
import { TEST_ADMIN_TOKEN, TEST_HASH_KEY } from '../test-support/probe.ts';
import { csvLine } from './research-csv.ts';
import { buildResearchWorld, type ResearchWorld } from './research-fixture.ts';
import { outcomeRecord } from './research-records.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const BULK = 60_000;

/** Text a censor or a probe could put in a message, a notice or a term. */
const HOSTILE = [
  '',
  '=HYPERLINK("https://x.example/?"&A1,"open")',
  '+86 138',
  '-cmd',
  '@SUM(A1)',
  '\tlead tab',
  '\rlead CR',
  'a,b',
  'say "hi"',
  'two\nlines',
  'crlf\r\nend',
  'back\\slash \\n \\u0000',
  '\u0001\u0008\u000b\u000c\u001f control',
  '\u007f\u0080\u009f',
  'line\u2028sep\u2029',
  '六四 天安门',
  '😀 emoji 𝌆',
  "'quoted'",
  'null',
  '{"a":[1,2]}',
  '</script><script>alert(1)</script>',
  `'; DROP TABLE outcomes; --`,
];

/** A whole response as the client saw it: status, bytes, and whether it ended complete. */
interface Fetched {
  status: number;
  body: string;
  complete: boolean;
}

function fetchAll(base: string, path: string): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const done = (complete: boolean) =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), complete });
      res.on('end', () => done(res.complete));
      res.on('aborted', () => done(false));
      res.on('error', () => done(false));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens an export and pauses after its first chunk; the caller decides what happens next. */
function openPaused(base: string, path: string): Promise<{ res: IncomingMessage; destroy(): void }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, (res) => {
      res.once('data', () => {
        res.pause();
        resolve({ res, destroy: () => req.destroy() });
      });
    });
    req.on('error', () => {});
    req.once('error', reject);
    req.end();
  });
}

/** Resolves with how the response ended: `complete` (a full chunked body) or `cut`. */
function howItEnds(res: IncomingMessage): Promise<'complete' | 'cut'> {
  return new Promise((resolve) => {
    res.on('end', () => resolve(res.complete ? 'complete' : 'cut'));
    res.on('aborted', () => resolve('cut'));
    res.on('error', () => resolve('cut'));
    res.resume();
  });
}

async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

describeEachDb('research API: streamed export', (getDb) => {
  let app: FastifyInstance;
  let w: ResearchWorld;
  let base: string;
  let conversationId: string;
  const tag = randomBytes(3).toString('hex');

  beforeAll(async () => {
    const db = getDb().db;
    app = await buildApp({
      db,
      config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
      rateLimit: { max: 100_000, timeWindowMs: 60_000 },
      maxConcurrentExports: 1,
      // Long enough that the checks made while a client is paused (a COPY is running) come
      // before the server gives up on it, also on a loaded machine (1.5 s failed there).
      exportStallMs: 5_000,
    });
    w = await buildResearchWorld(app, db, { hours: 1 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const first = await app.inject({
      url: `/api/v1/outcomes?campaign=${w.campaignId}&conversation_kind=group&limit=1`,
    });
    conversationId = (first.json() as OutcomesPage).outcomes[0]!.conversation_id;
    // Hostile text everywhere a text goes: canary text, term sets, received text, failure,
    // notice; final canaries (text shown) and sealed ones (deadline ahead: text null).
    const base0 = w.start.getTime() - 7_200_000;
    for (const [i, t] of HOSTILE.entries()) {
      const sealed = i % 5 === 4;
      const sendAt = new Date(sealed ? Date.now() + 3_600_000 + i : base0 + i * 1000);
      const termSet = [HOSTILE[(i + 3) % HOSTILE.length]!, `t${i}`];
      await db.execute(sql`with c as (
          insert into canaries (campaign_id, kind, pair_id, term_set, carried_terms, text, nonce, sender_account_id,
            conversation_id, send_at, deadline_at, template_id, template_version, seed)
          values (${w.campaignId}::uuid, ${i % 2 ? 'control' : 'test'}, gen_random_uuid(), ${textArray(termSet)},
            ${textArray(termSet)}, ${t}, ${`hostile-${tag}-${i}`}, ${w.accountIds.alice}::uuid, ${conversationId}::uuid,
            ${sendAt.toISOString()}::timestamptz, ${new Date(sendAt.getTime() + 60_000).toISOString()}::timestamptz,
            'hostile', '1', ${tag})
          returning id, send_at, deadline_at)
        insert into outcomes (canary_id, recipient_account_id, status, deadline_at, received_at, latency_ms,
          received_text, failure, notice, data_format_version)
        select c.id, r.id, r.status, c.deadline_at,
          case when r.status = 'altered' then c.send_at + interval '1.5 seconds' end,
          case when r.status = 'altered' then ${i % 3 === 0 ? -7 : 1500}::int end,
          case when r.status = 'altered' then ${HOSTILE[(i + 7) % HOSTILE.length]!} end,
          case when r.status = 'rejected' then ${HOSTILE[(i + 11) % HOSTILE.length]!} end,
          case when r.status = 'rejected' then ${HOSTILE[(i + 13) % HOSTILE.length]!} end, 1
        from c, (values (${w.accountIds.bob}::uuid, 'altered'), (${w.accountIds.carol}::uuid, 'rejected')) r(id, status)`);
    }
  }, 600_000);
  afterAll(async () => {
    await app.close();
  });

  it('knows the columns in the API order (NDJSON keys: outcomeRecord; CSV: OUTCOME_COLUMNS)', () => {
    expect([...EXPORT_CSV_COLUMNS]).toEqual(OUTCOME_COLUMNS);
    expect([...EXPORT_JSON_KEYS].sort()).toEqual([...OUTCOME_COLUMNS].sort());
  });

  /**
   * The export as the route wrote it before (JavaScript): readOutcomes' rows, outcomeRecord,
   * then JSON.stringify or csvLine, in the pages' order (send time, canary id, recipient id).
   */
  async function reference(
    filter: OutcomeFilter,
  ): Promise<{ ndjson: string; csv: string; records: OutcomeRecord[] }> {
    const found = await readOutcomes(getDb().db, filter, { order: 'asc', limit: 1_000_000 });
    const records = found.map(outcomeRecord);
    return {
      records,
      ndjson: records.map((r) => `${JSON.stringify(r)}\n`).join(''),
      csv: csvLine(OUTCOME_COLUMNS) + records.map((r) => csvLine(OUTCOME_COLUMNS.map((c) => r[c]))).join(''),
    };
  }

  it('writes every line as the API renders its records, byte for byte, hostile text included', async () => {
    const want = await reference({ campaign: w.campaignId });
    expect(want.records.filter((r) => r.text?.includes('"')).length).toBeGreaterThan(0);
    expect(want.records.filter((r) => r.term_set === null).length).toBeGreaterThan(0);
    const ndjson = await fetchAll(base, `/api/v1/export?campaign=${w.campaignId}`);
    expect(ndjson.complete).toBe(true);
    expect(ndjson.body).toBe(want.ndjson);
    expect(Object.keys(JSON.parse(ndjson.body.split('\n')[0]!))).toEqual(EXPORT_JSON_KEYS);
    const csv = await fetchAll(base, `/api/v1/export?campaign=${w.campaignId}&format=csv`);
    expect(csv.complete).toBe(true);
    expect(csv.body).toBe(want.csv);
  });

  it('filters by hostile values written into the COPY as literals (quotes, backslashes, JSON)', async () => {
    for (const i of [0, 4, 8, 11, 14, 18, 19]) {
      const termSet = [HOSTILE[(i + 3) % HOSTILE.length]!, `t${i}`];
      const want = await reference({ campaign: w.campaignId, termSet, statuses: ['altered', 'rejected'] });
      const got = await fetchAll(
        base,
        `/api/v1/export?campaign=${w.campaignId}&status=altered,rejected&terms=${encodeURIComponent(JSON.stringify(termSet))}`,
      );
      expect(got.status, JSON.stringify(termSet)).toBe(200);
      expect(got.body, JSON.stringify(termSet)).toBe(want.ndjson);
    }
    // Something matched: the final hostile canaries (every fifth is sealed and matches no terms).
    const some = await reference({
      campaign: w.campaignId,
      termSet: [HOSTILE[(8 + 3) % HOSTILE.length]!, 't8'],
    });
    expect(some.records.length).toBe(2);
  });

  it('writes random text as the API renders it (property)', async () => {
    const db = getDb().db;
    // Any Unicode text (NUL aside, which Postgres cannot store): the SQL renderer against
    // JSON.stringify and csvField.
    const text = fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\u0000'));
    const [c] = await rows<{ id: string }>(
      db,
      sql`select c.id from canaries c join outcomes o on o.canary_id = c.id
          where c.seed = ${tag} and c.deadline_at < now() and o.status = 'altered' limit 1`,
    );
    const filter = { campaign: w.campaignId, statuses: ['altered'] };
    await fc.assert(
      fc.asyncProperty(
        text,
        text,
        fc.array(text, { minLength: 1, maxLength: 3 }),
        async (t, received, terms) => {
          await db.execute(
            sql`update canaries set text = ${t}, term_set = ${textArray(terms)} where id = ${c!.id}::uuid`,
          );
          await db.execute(
            sql`update outcomes set received_text = ${received} where canary_id = ${c!.id}::uuid and status = 'altered'`,
          );
          const want = await reference(filter);
          const nd = await app.inject({ url: `/api/v1/export?campaign=${w.campaignId}&status=altered` });
          expect(nd.body).toBe(want.ndjson);
          const csv = await app.inject({
            url: `/api/v1/export?campaign=${w.campaignId}&status=altered&format=csv`,
          });
          expect(csv.body).toBe(want.csv);
        },
      ),
      { numRuns: 40 },
    );
  }, 300_000);

  it('exports a send-time window exactly, over HTTP and in windows of any size', async () => {
    const db = getDb().db;
    const hostile = await rows<{ at: string }>(
      db,
      sql`select ${isoMicros(sql`send_at`)} as at from canaries where seed = ${tag} and deadline_at < now()
          order by send_at`,
    );
    expect(hostile.length).toBeGreaterThan(6);
    // from: a canary's own send time (included); to: a later canary's (excluded).
    const from = hostile[2]!.at;
    const to = hostile[hostile.length - 3]!.at;
    const filter: OutcomeFilter = { campaign: w.campaignId, from: new Date(from), to: new Date(to) };
    const want = await reference(filter);
    const sent = want.records.map((r) => r.send_at as string);
    expect(sent[0]).toBe(new Date(from).toISOString());
    expect(sent.every((t) => t >= new Date(from).toISOString() && t < new Date(to).toISOString())).toBe(true);
    expect(want.records.length).toBeGreaterThan(4);
    const got = await fetchAll(
      base,
      `/api/v1/export?campaign=${w.campaignId}&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
    );
    expect(got.complete).toBe(true);
    expect(got.body).toBe(want.ndjson);
    // PGlite's windows (the route uses them on PGlite only): every size cuts between canaries
    // and resumes after the last one, with and without a window, with and without a filter
    // that skips whole windows.
    const read = <T>(f: (q: typeof db) => Promise<T>) => f(db);
    const cases: [string, OutcomeFilter][] = [
      ['window', filter],
      ['campaign', { campaign: w.campaignId }],
      ['altered', { campaign: w.campaignId, statuses: ['altered'] }],
    ];
    for (const [name, f] of cases) {
      const all = await reference(f);
      for (const size of [1, 2, 3, 7, 1_000]) {
        let text = '';
        for await (const chunk of windowedExportStream(read, f, 'ndjson', size)) text += String(chunk);
        expect(text, `${name}, windows of ${size}`).toBe(all.ndjson);
      }
    }
  }, 300_000);

  describe('on a large campaign', () => {
    beforeAll(async () => {
      const n = await insertBulkOutcomes(getDb().db, {
        campaignId: w.campaignId,
        senderAccountId: w.accountIds.alice,
        conversationId,
        recipientAccountIds: [w.accountIds.bob, w.accountIds.carol],
        canaries: BULK / 2,
        start: new Date(w.start.getTime() - BULK * 1000 - 7_200_000),
        stepMs: 1000,
        termSet: ['bulk'],
      });
      expect(n).toBe(BULK);
    }, 600_000);

    /** Server backends running an export's COPY. */
    const copies = async () => {
      const found = await rows<{ n: number }>(
        getDb().db,
        sql`select count(*)::int as n from pg_stat_activity
            where datname = current_database() and query ilike 'copy (select%' and pid <> pg_backend_pid()`,
      );
      return found[0]!.n;
    };
    const inUse = () => {
      const pool = serverPool(getDb().db);
      return pool ? pool.totalCount - pool.idleCount : 0;
    };

    it('releases the connection and ends the query when the client goes away mid-export', async () => {
      const open = await openPaused(base, `/api/v1/export?campaign=${w.campaignId}`);
      if (getDb().driver === 'pg') {
        // The COPY runs, blocked on the full socket, holding one pooled connection.
        expect(await copies()).toBe(1);
        expect(inUse()).toBeGreaterThanOrEqual(1);
      }
      // Other requests interleave with a running export (PGlite: its one connection is free between windows).
      const t = performance.now();
      const page = await app.inject({ url: `/api/v1/outcomes?campaign=${w.campaignId}&limit=5` });
      expect(page.statusCode).toBe(200);
      process.stdout.write(`a page during a paused export: ${(performance.now() - t).toFixed(0)} ms\n`);
      open.destroy();
      if (getDb().driver === 'pg') {
        await until('the COPY ended on the server', async () => (await copies()) === 0);
        await until('the pool connection returned', async () => inUse() === 0);
      }
      // The one export slot is free again: a whole export completes.
      let full: Fetched | undefined;
      await until('the export slot is free', async () => {
        full = await fetchAll(base, `/api/v1/export?campaign=${w.campaignId}&status=missing`);
        return full.status === 200;
      });
      expect(full!.complete).toBe(true);
      expect(full!.body.split('\n').length).toBeGreaterThan(BULK / 20);
    }, 120_000);

    it('cuts a client that reads nothing while the connection is full, and releases everything', async () => {
      // The connection fills only if the export is larger than the kernel's socket buffers on
      // both ends can hold (Linux autotunes a local receive buffer up to tcp_rmem's maximum). The
      // CSV of this campaign (30.2 MB) is less than the 37.7 MB they can hold on the CI machine,
      // and a CI run once saw the export complete; the NDJSON is larger.
      const path = `/api/v1/export?campaign=${w.campaignId}`;
      const buffers = ['tcp_rmem', 'tcp_wmem']
        .map((f) => {
          try {
            return Number(readFileSync(`/proc/sys/net/ipv4/${f}`, 'utf8').trim().split(/\s+/)[2]);
          } catch {
            return 0;
          }
        })
        .reduce((a, b) => a + b, 0);
      const whole = await fetchAll(base, path);
      expect(Buffer.byteLength(whole.body), 'the export must outgrow the socket buffers').toBeGreaterThan(
        buffers,
      );
      const open = await openPaused(base, path);
      // exportStallMs is 5 s here: the server gives up on the paused client. (A paused
      // client does not see its socket close: the server side shows it.)
      if (getDb().driver === 'pg') {
        expect(await copies()).toBe(1);
        await until('the COPY ended on the server', async () => (await copies()) === 0);
        await until('the pool connection returned', async () => inUse() === 0);
      }
      await until('the export slot is free', async () => {
        const res = await app.inject({
          url: `/api/v1/export?campaign=${w.campaignId}&kind=test&status=missing`,
        });
        return res.statusCode === 200;
      });
      // Reading on, the client gets what was sent and then a cut answer, not a complete one.
      expect(await howItEnds(open.res)).toBe('cut');
    }, 120_000);

    it('cuts the connection when the export fails after its first bytes (never a complete-looking answer)', async () => {
      const db = getDb().db;
      const open = await openPaused(base, `/api/v1/export?campaign=${w.campaignId}`);
      const outcome = howItEnds(open.res);
      try {
        if (getDb().driver === 'pg') {
          // The backend running the COPY dies (a server restart, an operator's kill).
          await db.execute(
            sql`select pg_terminate_backend(pid) from pg_stat_activity
                where datname = current_database() and query ilike 'copy (select%' and pid <> pg_backend_pid()`,
          );
        } else {
          // PGlite: the next window's read fails.
          await db.execute(sql`alter table outcomes rename to outcomes_away`);
        }
        expect(await outcome).toBe('cut');
      } finally {
        if (getDb().driver === 'pglite') await db.execute(sql`alter table outcomes_away rename to outcomes`);
      }
      await until('the export slot is free', async () => {
        const res = await app.inject({
          url: `/api/v1/export?campaign=${w.campaignId}&kind=test&status=missing`,
        });
        return res.statusCode === 200;
      });
      if (getDb().driver === 'pg') await until('the pool connection returned', async () => inUse() === 0);
    }, 120_000);
  });
});
