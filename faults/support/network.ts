/**
 * One fault case's network, every part real: a Postgres server the case owns (initdb in a
 * temp folder, its own port), the collector as a process of its own on it (optionally
 * through a cuttable proxy to the database), the testbed, two probe processes (CN and US,
 * optionally through a cuttable proxy to the collector) and a short campaign of rounds every
 * two seconds. A case breaks something while the rounds go out, repairs it, then `drain()`
 * and `account()` tell whether every event was stored exactly once.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalFleet, startLocalFleet } from '../../cli/local/network.ts';
import { findingVerdicts } from '../../collector/db/inspect.ts';
import { type Database, openDatabase } from '../../collector/db/open.ts';
import { isFindingVerdict } from '../../collector/findings.ts';
import { OutboxWatch } from '../../e2e/support/journal.ts';
import { type CuttableProxy, startProxy } from '../../e2e/support/proxy.ts';
import { type Accounting, accountFor } from './accounting.ts';
import { type CollectorProcess, startCollectorProcess } from './collector-process.ts';
import { findPostgres, type OwnedPostgres, startOwnedPostgres } from './postgres.ts';

export interface FaultNetworkOptions {
  name: string;
  /** A cuttable proxy between the collector and Postgres. */
  databaseProxy?: boolean;
  /** A cuttable proxy between the probes and the collector. */
  probeProxy?: boolean;
  /** How long rounds are planned for, from the campaign's start (default 14 s). */
  activeSeconds?: number;
  /** Receipt deadline after each send (default 15 s). */
  deadlineSeconds?: number;
}

export interface FaultNetwork {
  name: string;
  dataDir: string;
  postgres: OwnedPostgres;
  collector: CollectorProcess;
  fleet: LocalFleet;
  /** A direct connection to the case's database (not through the proxy), for the checks. */
  database: Database;
  databaseProxy: CuttableProxy | undefined;
  probeProxy: CuttableProxy | undefined;
  journals: OutboxWatch;
  /** When the campaign stops planning rounds. */
  endsAt: Date;
  /** Finding verdicts (suppressed, delayed, …) seen on any poll during the run. */
  findingsSeen: Set<string>;
  /** Events the probes produced so far (from their journals). */
  produced(): number;
  /** Waits until the last deadline passed, every probe's outbox is empty and every canary is reported. */
  drain(timeoutMs: number): Promise<void>;
  /** Stops the probes (their outboxes flushed), reads the journals once more and counts. */
  account(): Promise<Accounting>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 250,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end)
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting until ${what}`);
    await sleep(everyMs);
  }
}

export async function startFaultNetwork(o: FaultNetworkOptions): Promise<FaultNetwork> {
  const bin = await findPostgres();
  if (typeof bin === 'string') throw new Error(bin);
  const dataDir = mkdtempSync(join(tmpdir(), `sd-faults-net-${o.name.replace(/[^a-z0-9]+/gi, '-')}-`));
  const cleanups: (() => Promise<void>)[] = [];
  const cleanUp = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const postgres = await startOwnedPostgres(bin);
    cleanups.push(() => postgres.destroy());
    const directUrl = await postgres.createDatabase('silentdrop');
    let databaseProxy: CuttableProxy | undefined;
    let collectorDbUrl = directUrl;
    if (o.databaseProxy) {
      databaseProxy = await startProxy(`http://127.0.0.1:${postgres.port}`);
      cleanups.push(() => databaseProxy!.close());
      const via = new URL(directUrl);
      via.port = String(databaseProxy.port);
      collectorDbUrl = via.toString();
    }
    const collector = await startCollectorProcess({
      dataDir: join(dataDir, 'collector'),
      databaseUrl: collectorDbUrl,
      adminToken: randomBytes(24).toString('base64url'),
      env: {
        // Canaries are handed out up to 6 s ahead: probes check in every second (each at its own phase).
        SILENTDROP_CHECKIN_INTERVAL_MS: '6000',
        SILENTDROP_SWEEP_INTERVAL_MS: '500',
      },
    });
    cleanups.push(async () => {
      await collector.stop(5_000);
    });
    const database = await openDatabase({ databaseUrl: directUrl, dataDir: '', poolSize: 2 });
    cleanups.push(() => database.close());

    let probeProxy: CuttableProxy | undefined;
    const activeMs = (o.activeSeconds ?? 14) * 1000;
    const fleet = await startLocalFleet(
      {
        dataDir,
        policy: { regions: ['CN', 'US'] },
        termSets: [['图书馆'], ['自行车']],
        regions: { CN: 1, US: 1 },
        probeMode: 'process',
        cadence: '*/2 * * * * *',
        deadlineSeconds: o.deadlineSeconds ?? 15,
        campaign: {
          name: `fault ${o.name}`,
          startsAt: (now) => new Date(now.getTime() + 2000),
          endsAt: (now) => new Date(now.getTime() + 2000 + activeMs),
        },
        probeCheckinCron: '* * * * * *',
        testbed: { seed: 7, rateLimit: false },
        ...(o.probeProxy
          ? {
              probeCollectorUrl: async (url: string) => {
                probeProxy = await startProxy(url);
                cleanups.push(() => probeProxy!.close());
                return probeProxy.url;
              },
            }
          : {}),
        env: {},
      },
      { url: collector.url, adminToken: collector.adminToken },
    );
    cleanups.push(() => fleet.stop());
    const endsAt = new Date(Date.parse(fleet.campaign.ends_at ?? new Date().toISOString()));
    const dirs = [...fleet.probes.values()].map((p) => p.dir);
    const journals = new OutboxWatch(dirs).start();
    cleanups.push(async () => journals.stop());

    const findingsSeen = new Set<string>();
    const findingsPoll = setInterval(() => {
      findingVerdicts(database.db, fleet.campaign.id).then(
        (v) => {
          for (const verdict of Object.keys(v)) if (isFindingVerdict(verdict)) findingsSeen.add(verdict);
        },
        () => undefined, // the database is being restarted: the next poll sees it
      );
    }, 500);
    cleanups.push(async () => clearInterval(findingsPoll));

    const produced = () => [...journals.read().seen.values()].reduce((n, v) => n + v.events.size, 0);
    let stopped = false;
    const net: FaultNetwork = {
      name: o.name,
      dataDir,
      postgres,
      collector,
      fleet,
      database,
      databaseProxy,
      probeProxy,
      journals,
      endsAt,
      findingsSeen,
      produced,
      async drain(timeoutMs) {
        const deadlineMs = (o.deadlineSeconds ?? 15) * 1000;
        await until(
          'the last deadline passed, the outboxes are empty and every canary held is reported',
          () => {
            if (Date.now() < endsAt.getTime() + deadlineMs + 1000) return false;
            journals.read();
            if (journals.backlog() > 0) return false;
            for (const view of journals.seen.values()) {
              const reported = new Set(
                [...view.events.values()].filter((e) => e.type !== 'received').map((e) => e.canary_id),
              );
              for (const c of view.canaries) if (!reported.has(c)) return false;
            }
            return true;
          },
          timeoutMs,
          500,
        );
      },
      async account() {
        await fleet.stop();
        journals.stop();
        journals.read();
        // One sweep more: outcomes of the last receipts are derived at ingest, findings on the sweep.
        await sleep(1500);
        return accountFor(o.name, database.db, fleet, journals, findingsSeen);
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await cleanUp();
        if (process.env.SILENTDROP_KEEP_FAULTS !== '1') rmSync(dataDir, { recursive: true, force: true });
      },
    };
    return net;
  } catch (err) {
    await cleanUp();
    if (process.env.SILENTDROP_KEEP_FAULTS !== '1') rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}
