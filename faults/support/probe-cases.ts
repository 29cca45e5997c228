/**
 * Harness for the probe-side fault cases (issue 15): a local network (cli/local/network.ts)
 * with two probe processes (CN, US; one account each, a direct chat and a group), a
 * campaign of rounds every two seconds, the collector on a Postgres server the case owns
 * (support/postgres.ts; PGlite where this machine has no Postgres binaries), and the closing account every case ends with: from the
 * probes' journals (read all along, so compaction hides nothing) and acknowledgements
 * against the database, every event a probe produced is stored exactly once and every
 * canary handed out has exactly one send report.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { type LocalNetwork, startLocalNetwork } from '../../cli/local/network.ts';
import { rows } from '../../collector/db/open.ts';
import { decodeRecord } from '../../probe/journal.ts';
import { until } from './network.ts';
import { findPostgres, type OwnedPostgres, startOwnedPostgres } from './postgres.ts';

export const REGIONS = ['CN', 'US'] as const;
export type Region = (typeof REGIONS)[number];

/** A figure or a note for whoever runs the case (stderr, as the scenario table prints). */
export function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

export { until };

interface JournalEvent {
  type: string;
  canary_id?: string;
  account: string;
  region: Region;
}

/**
 * Everything the probes' journals ever held: polled, so events compacted away after their
 * acknowledgement are still counted as produced.
 */
export class JournalWatch {
  readonly produced = new Map<string, JournalEvent>();
  readonly acked = new Set<string>();
  /** Canary ids each probe journaled as handed out. */
  readonly canaries = new Map<Region, Set<string>>(REGIONS.map((r) => [r, new Set()]));
  /** Unacknowledged event ids per probe at the last read. */
  readonly unacked = new Map<Region, number>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly dirs: ReadonlyMap<Region, string>) {}

  start(everyMs = 300): void {
    this.timer = setInterval(() => this.read(), everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.read();
  }

  read(): void {
    for (const [region, dir] of this.dirs) {
      let text = '';
      try {
        text = readFileSync(join(dir, 'outbox', 'journal.log'), 'utf8');
      } catch {
        continue;
      }
      const live = new Set<string>();
      const ackedHere = new Set<string>();
      for (const line of text.split('\n')) {
        const r = decodeRecord(line);
        if (!r) continue;
        if (r.k === 'ev') {
          const ev = r.ev as { event_id: string; type: string; canary_id?: string; account: string };
          live.add(ev.event_id);
          this.produced.set(ev.event_id, {
            type: ev.type,
            ...(ev.canary_id ? { canary_id: ev.canary_id } : {}),
            account: ev.account,
            region,
          });
        } else if (r.k === 'ack') {
          for (const id of r.ids as string[]) {
            this.acked.add(id);
            ackedHere.add(id);
          }
        } else if (r.k === 'canary') {
          this.canaries.get(region)?.add((r.a as { canary_id: string }).canary_id);
        }
      }
      this.unacked.set(region, [...live].filter((id) => !ackedHere.has(id)).length);
    }
  }
}

export interface CaseNetwork {
  net: LocalNetwork;
  dataDir: string;
  dirs: Map<Region, string>;
  watch: JournalWatch;
  /** Where the database is: `server` (a Postgres server the case owns) or `pglite` (no Postgres binaries here). */
  database: 'server' | 'pglite';
  stop(): Promise<void>;
}

export interface CaseOptions {
  name: string;
  /** Called with each probe's folder before anything is written there (e.g. mount a tmpfs). */
  prepare?: (region: Region, dir: string) => void;
  /** Called with each probe's folder after the network stopped, before it is removed (e.g. unmount). */
  release?: (region: Region, dir: string) => void;
  /** Extra environment per probe process. */
  probeEnv?: Partial<Record<Region, NodeJS.ProcessEnv>>;
  /** How long the campaign plans rounds (one every two seconds), from 3 s after it is made. */
  campaignSeconds: number;
  deadlineSeconds?: number;
}

/** The probes' folders of a network in `dataDir` (cli/local/network.ts's layout). */
export const probeDir = (dataDir: string, region: string) => join(dataDir, 'probes', region);

export async function startCase(o: CaseOptions): Promise<CaseNetwork> {
  const dataDir = mkdtempSync(join(tmpdir(), `sd-fault-${o.name}-`));
  const dirs = new Map(REGIONS.map((r) => [r, probeDir(dataDir, r)] as const));
  for (const [r, d] of dirs) o.prepare?.(r, d);
  // A Postgres server of the case's own, as the other fault cases (support/postgres.ts); where
  // this machine has no Postgres binaries, the collector's embedded PGlite.
  const bin = await findPostgres();
  let owned: OwnedPostgres | undefined;
  let databaseUrl: string | undefined;
  if (typeof bin !== 'string') {
    owned = await startOwnedPostgres(bin);
    databaseUrl = await owned.createDatabase('silentdrop').catch(async (err) => {
      await owned?.destroy();
      throw err;
    });
  }
  let net: LocalNetwork;
  try {
    net = await startLocalNetwork({
      dataDir,
      policy: { regions: [...REGIONS] },
      termSets: [['图书馆']],
      regions: { CN: 1, US: 1 },
      probeMode: 'process',
      cadence: '*/2 * * * * *',
      deadlineSeconds: o.deadlineSeconds ?? 60,
      campaign: {
        name: `fault ${o.name}`,
        startsAt: (now) => new Date(now.getTime() + 3000),
        endsAt: (now) => new Date(now.getTime() + 3000 + o.campaignSeconds * 1000),
      },
      collector: {
        checkinIntervalMs: 3000,
        sweepIntervalMs: 250,
        ...(databaseUrl ? { databaseUrl } : {}),
      },
      probeCheckinCron: '* * * * * *',
      testbed: { seed: 15, rateLimit: false },
      ...(o.probeEnv ? { probeEnv: o.probeEnv as Record<string, NodeJS.ProcessEnv> } : {}),
      env: {},
    });
  } catch (err) {
    await owned?.destroy();
    throw err;
  }
  const watch = new JournalWatch(dirs);
  watch.start();
  return {
    net,
    dataDir,
    dirs,
    watch,
    database: owned ? 'server' : 'pglite',
    async stop() {
      watch.stop();
      await net.stop();
      await owned?.destroy();
      for (const [r, d] of dirs) o.release?.(r, d);
      if (process.env.SILENTDROP_KEEP_E2E === '1') say(`[fault ${o.name}] kept ${dataDir}`);
      else rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

interface StoredEvent {
  event_id: string;
  type: string;
  canary: string | null;
  account: string;
}

export interface Accounting {
  produced: number;
  stored: number;
  duplicated: number;
  lost: number;
  handedOut: number;
  /** Canaries planned but never handed out (e.g. held back from a full probe until too late). */
  notHandedOut: number;
  /** Each problem in words: a lost event, a canary with no or two send reports, a receipt twice. */
  problems: string[];
}

async function storedEvents(c: CaseNetwork): Promise<StoredEvent[]> {
  const ids = Object.values(c.net.probeIds);
  return rows<StoredEvent>(
    c.net.collector.database.db,
    sql`select e.event_id::text, e.type, coalesce(e.canary_id, cn.id)::text as canary, a.handle as account
        from events e join accounts a on a.id = e.account_id
        left join canaries cn on cn.nonce = e.nonce
        where a.probe_id::text in (${sql.join(
          ids.map((id) => sql`${id}`),
          sql`, `,
        )})`,
  );
}

async function canaries(c: CaseNetwork): Promise<{ id: string; handed: boolean; deadline: number }[]> {
  return rows<{ id: string; handed: boolean; deadline: number }>(
    c.net.collector.database.db,
    sql`select id::text, handed_out_at is not null as handed,
          (extract(epoch from deadline_at) * 1000)::float8 as deadline
        from canaries where campaign_id = ${c.net.campaign.id}::uuid`,
  );
}

/**
 * Waits until the case has settled: every event the journals held is stored and each probe's
 * backlog is empty, the campaign's last deadline passed, every handed-out canary reported.
 */
export async function settle(c: CaseNetwork, timeoutMs: number): Promise<void> {
  const campaignEnd = Date.parse(c.net.campaign.ends_at ?? new Date().toISOString());
  // What is still missing at the last poll: the timeout says it, so a failure in CI tells
  // which part of the network did not settle.
  let missing = 'nothing polled yet';
  try {
    await until(
      'the campaign is over, every journaled event stored, every backlog empty and every handed-out canary reported',
      async () => {
        c.watch.read();
        // Drained: every event a journal ever held is stored, and each probe says its backlog
        // is empty. (Not "every `ev` record has an `ack` record in the journal file": an ack
        // the disk refused is written with the next journal write that works, which may come
        // later; probe/storage.test.ts holds that it does.)
        const stored = await storedEvents(c);
        const storedNow = new Set(stored.map((e) => e.event_id));
        const unstored = [...c.watch.produced.keys()].filter((id) => !storedNow.has(id));
        const backlogs = probeBacklogs(c);
        if (unstored.length > 0 || Object.values(backlogs).some((b) => b !== 0)) {
          missing = `events not stored: ${unstored.length} (${unstored.slice(0, 5).join(', ')}); backlogs: ${JSON.stringify(backlogs)}; journal events without an ack record: ${JSON.stringify(Object.fromEntries(c.watch.unacked))}`;
          return false;
        }
        const list = await canaries(c);
        const lastDeadline = Math.max(campaignEnd, ...list.map((x) => x.deadline));
        if (Date.now() < lastDeadline + 1000) {
          missing = `the last deadline is ${new Date(lastDeadline).toISOString()}`;
          return false;
        }
        const reported = new Set(stored.filter((e) => e.type !== 'received').map((e) => e.canary));
        const unreported = list.filter((x) => x.handed && !reported.has(x.id)).map((x) => x.id);
        missing = `handed-out canaries with no send report: ${JSON.stringify(await describeCanaries(c, unreported.slice(0, 10)))}`;
        return unreported.length === 0;
      },
      timeoutMs,
      500,
    );
  } catch (err) {
    throw new Error(
      `${(err as Error).message}; still missing: ${missing}; the probes' status files: ${probeStatuses(c)}`,
    );
  }
}

/** Where each canary went and when (for a failure message). */
async function describeCanaries(c: CaseNetwork, ids: string[]): Promise<Record<string, unknown>[]> {
  if (ids.length === 0) return [];
  return rows<Record<string, unknown>>(
    c.net.collector.database.db,
    sql`select cn.id::text, a.handle as sender, cn.send_at::text, cn.deadline_at::text, cn.handed_out_at::text
        from canaries cn join accounts a on a.id = cn.sender_account_id
        where cn.id::text in (${sql.join(
          ids.map((id) => sql`${id}`),
          sql`, `,
        )})`,
  );
}

/** Each probe's status.json, parsed (an error message when unreadable). */
function readStatuses(c: CaseNetwork): Record<string, Record<string, unknown> | string> {
  const out: Record<string, Record<string, unknown> | string> = {};
  for (const [region, dir] of c.dirs) {
    try {
      out[region] = JSON.parse(readFileSync(join(dir, 'status.json'), 'utf8')) as Record<string, unknown>;
    } catch (err) {
      out[region] = `unreadable: ${(err as Error).message}`;
    }
  }
  return out;
}

/** Each probe's backlog as its status.json says (undefined when unreadable). */
function probeBacklogs(c: CaseNetwork): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(readStatuses(c)).map(([r, s]) => [r, typeof s === 'string' ? undefined : s.backlog]),
  );
}

/** Each probe's status.json, in short (for a failure message). */
function probeStatuses(c: CaseNetwork): string {
  const short = (s: Record<string, unknown> | string) =>
    typeof s === 'string'
      ? s
      : {
          written_at: s.written_at,
          last_checkin_at: s.last_checkin_at,
          last_checkin_error: s.last_checkin_error,
          backlog: s.backlog,
          storage: s.storage,
          deferred_canaries: s.deferred_canaries,
          scheduled: s.scheduled,
        };
  return JSON.stringify(Object.fromEntries(Object.entries(readStatuses(c)).map(([r, s]) => [r, short(s)])));
}

/** The closing account of a fault case; printed, and returned for the test to assert. */
export async function account(c: CaseNetwork, name: string): Promise<Accounting> {
  c.watch.read();
  const stored = await storedEvents(c);
  const storedIds = new Map<string, number>();
  for (const e of stored) storedIds.set(e.event_id, (storedIds.get(e.event_id) ?? 0) + 1);
  const problems: string[] = [];
  let duplicated = 0;
  let lost = 0;
  for (const [id, n] of storedIds) {
    if (n > 1) {
      duplicated += n - 1;
      problems.push(`event ${id} stored ${n} times`);
    }
  }
  for (const [id, ev] of c.watch.produced) {
    if (!storedIds.has(id)) {
      lost += 1;
      problems.push(`event ${id} (${ev.type} by ${ev.region}) journaled but not stored`);
    }
  }
  for (const id of c.watch.acked) {
    if (!storedIds.has(id)) problems.push(`event ${id} acknowledged but not stored`);
  }
  const list = await canaries(c);
  const reports = new Map<string, number>();
  const receipts = new Map<string, number>();
  for (const e of stored) {
    if (!e.canary) continue;
    if (e.type === 'received') {
      const k = `${e.canary} ${e.account}`;
      receipts.set(k, (receipts.get(k) ?? 0) + 1);
    } else reports.set(e.canary, (reports.get(e.canary) ?? 0) + 1);
  }
  for (const x of list.filter((x) => x.handed)) {
    const n = reports.get(x.id) ?? 0;
    if (n !== 1) problems.push(`canary ${x.id}: ${n} send reports`);
    if (n > 1) duplicated += n - 1;
  }
  for (const [k, n] of receipts) {
    if (n > 1) {
      duplicated += n - 1;
      problems.push(`receipt ${k} stored ${n} times`);
    }
  }
  const result: Accounting = {
    produced: c.watch.produced.size,
    stored: stored.filter((e) => c.watch.produced.has(e.event_id)).length,
    duplicated,
    lost,
    handedOut: list.filter((x) => x.handed).length,
    notHandedOut: list.filter((x) => !x.handed).length,
    problems,
  };
  say(
    `[fault ${name}] (${c.database}) events produced ${result.produced} / stored ${result.stored} / ` +
      `duplicated ${result.duplicated} / lost ${result.lost}; canaries handed out ${result.handedOut} ` +
      `(each with one send report: ${problems.some((p) => p.includes('send reports')) ? 'NO' : 'yes'}), ` +
      `never handed out ${result.notHandedOut}`,
  );
  return result;
}

/** Outcomes of the case's campaign: status and latency per canary and recipient. */
export async function outcomes(
  c: CaseNetwork,
): Promise<{ status: string; latency_ms: number | null; sender: string; recipient: string }[]> {
  return rows(
    c.net.collector.database.db,
    sql`select o.status, o.latency_ms, s.handle as sender, r.handle as recipient
        from outcomes o join canaries cn on cn.id = o.canary_id
        join accounts s on s.id = cn.sender_account_id
        join accounts r on r.id = o.recipient_account_id
        where cn.campaign_id = ${c.net.campaign.id}::uuid`,
  );
}

/** Lines of the collector's log (NDJSON) that match `test`. */
export function collectorLog(c: CaseNetwork, test: (line: Record<string, unknown>) => boolean) {
  let text = '';
  try {
    text = readFileSync(join(c.dataDir, 'logs', 'collector.log'), 'utf8');
  } catch {
    return [];
  }
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const j = JSON.parse(line) as Record<string, unknown>;
      if (test(j)) out.push(j);
    } catch {
      // a line being written
    }
  }
  return out;
}
