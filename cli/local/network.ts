/**
 * A whole silentdrop network on one machine: the collector (in-process, embedded PGlite
 * in the data folder unless a database URL is given), a testbed platform with a policy
 * (in-process, state kept in `<data>/testbed/state.json`), test accounts in several
 * regions with direct chats across regions and one group with everyone, one probe per
 * region (a separate process by default, talking real HTTP to the collector) enrolled
 * through the admin API, and a campaign with controls over those conversations.
 *
 * Run again on the same data folder, it continues: accounts and conversations keep
 * their ids (testbed state file), probes keep their keys and ids (identity.json in their
 * folders, no second enrollment), and the campaign is reused (network.json). Used by
 * `silentdrop demo`, by the end-to-end tests, and meant for `silentdrop evaluate`.
 * `startLocalFleet` is the same network around a collector started elsewhere (the fault
 * suite runs it as a process of its own, to kill it).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Logger, pino } from 'pino';
import { loadConfig as loadCollectorConfig } from '../../collector/config.ts';
import { createLogger } from '../../collector/logger.ts';
import { type RunningCollector, startCollector } from '../../collector/server.ts';
import type { Campaign, CampaignMode } from '../../protocol/index.ts';
import { startTestbed, type Testbed } from '../../testbed/index.ts';
import { AdminClient } from './admin-client.ts';
import { cappedLogDestination } from './log-files.ts';
import { type LocalAccount, type LocalConversation, planAccounts, setUpPlatform } from './platform.ts';
import {
  hasIdentity,
  type LocalAdapter,
  type ProbeMode,
  type ProbeSpec,
  type RunningProbe,
  runProbe,
  writeProbeConfig,
} from './probes.ts';
import { readState, writeState } from './state.ts';

export type { LocalAccount, LocalConversation } from './platform.ts';
export type { LocalAdapter, ProbeMode, RunningProbe } from './probes.ts';

/** A testbed policy: a file path or an object in the policy file format. */
export type PolicySource = string | Record<string, unknown>;

export interface LocalNetworkOptions {
  /** Everything lives here: collector data, testbed state, probe folders, logs. */
  dataDir: string;
  policy: PolicySource;
  /** Tested term sets (each gets a matched control in every round). */
  termSets: readonly (readonly string[])[];
  /** Accounts per registration region, e.g. `{ CN: 2, US: 2, AU: 1 }`; one probe per region. */
  regions: Readonly<Record<string, number>>;
  /** Campaign cadence: cron, UTC; 6 fields for seconds (`*\/20 * * * * *`). */
  cadence: string;
  /** Receipt later than send + this is `delayed`; none by then is `missing`. */
  deadlineSeconds: number;
  adapter?: LocalAdapter;
  /** `process` (default): `silentdrop probe` child processes; `in-process`: `startProbe`. */
  probeMode?: ProbeMode;
  campaign?: {
    name?: string;
    mode?: CampaignMode;
    termSetsPerRound?: number;
    seed?: string;
    /** A time, or one computed from the moment the campaign is created (e.g. "in 2 s"). */
    startsAt?: Date | ((now: Date) => Date);
    endsAt?: Date | ((now: Date) => Date);
  };
  collector?: {
    /**
     * Screens clear a set only with the clearance rule of decision 024 (FollowupOptions.screenClearance);
     * default: the collector's configuration (SILENTDROP_SCREEN_CLEARANCE, default true, decision 038).
     */
    screenClearance?: boolean;
    /** Default 0 (any free port). */
    port?: number;
    host?: string;
    /** postgres://…; default DATABASE_URL from `env`, else PGlite in `<data>/pglite`. */
    databaseUrl?: string;
    /** Canaries due within this are handed out at a check-in (default 10 s). */
    checkinIntervalMs?: number;
    /** Deadline finaliser and round planner period (default 1 s). */
    sweepIntervalMs?: number;
    /**
     * Collector processes' worth of collectors on the one database (default 1): each its own
     * server, pool and sweep, the probes split between them in turn. More than one needs a
     * Postgres server (`databaseUrl`): a PGlite folder belongs to one process.
     */
    count?: number;
  };
  /** node-cron for the probes' check-ins (default every 5 s). */
  probeCheckinCron?: string;
  /**
   * `persist: false`: no testbed state file (a run in a folder removed afterwards). The state file
   * is the whole store written synchronously after changes, which grows with every message.
   */
  testbed?: { port?: number; seed?: number; rateLimit?: false; persist?: false };
  /** Extra adapter settings for every account (e.g. browser pacing). */
  adapterSettings?: Record<string, unknown>;
  /** Prefix for account handles (default none: `cn-1`, `us-1`, …). */
  handlePrefix?: string;
  /** The URL probes are told to use for the collector (e.g. a proxy in front of it). */
  probeCollectorUrl?: (collectorUrl: string) => string | Promise<string>;
  /** Log level of the collector, testbed and probes; logs go to `<data>/logs/` and probe folders. */
  logLevel?: string;
  /** Extra environment per region's probe process (e.g. libfaketime in the fault tests). */
  probeEnv?: Readonly<Record<string, NodeJS.ProcessEnv>>;
  /** How long the probes may take to register and check in (default 60 s). */
  startupTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Everything of a local network but the collector: testbed, accounts, probes, campaign. */
export interface LocalFleet {
  dataDir: string;
  /** The first collector's URL as probes see it (probes are split between the collectors in turn). */
  probeCollectorUrl: string;
  testbed: Testbed;
  admin: AdminClient;
  accounts: LocalAccount[];
  conversations: LocalConversation[];
  campaign: Campaign;
  /** False when the campaign of an earlier run was reused. */
  campaignCreated: boolean;
  /** Probe ids by region. */
  probeIds: Record<string, string>;
  /** Enrollments made in this run (0 when every probe reused its identity). */
  enrolled: number;
  probes: Map<string, RunningProbe>;
  /** Starts the region's probe again (after a stop or a kill), with the same identity. */
  restartProbe(region: string): Promise<RunningProbe>;
  /** Probes first (SIGTERM, their outboxes flushed), then the testbed. */
  stop(): Promise<void>;
}

export interface LocalNetwork extends LocalFleet {
  /** The first collector: the admin client and the campaign were made through it. */
  collector: RunningCollector;
  /** Every collector (the first one first). */
  collectors: RunningCollector[];
  /** Probes first (SIGTERM, their outboxes flushed), then the testbed, then the collector. */
  stop(): Promise<void>;
}

/** A collector the fleet talks to: its URL and admin token (in-process or another process). */
export interface CollectorEndpoint {
  url: string;
  adminToken: string;
  /**
   * Further collectors on the same database: the probes are split between `url` and these in
   * turn (the admin client and the campaign use `url`).
   */
  moreUrls?: readonly string[];
}

export type LocalFleetOptions = Omit<LocalNetworkOptions, 'collector'>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fileLogger(dir: string, name: string, level: string): Logger {
  mkdirSync(dir, { recursive: true });
  return pino({ level, base: { part: name } }, cappedLogDestination(join(dir, `${name}.log`)));
}

function fingerprint(o: LocalNetworkOptions, refs: string[], adapter: LocalAdapter): string {
  const c = o.campaign ?? {};
  const basis = JSON.stringify([
    o.termSets,
    refs,
    o.cadence,
    o.deadlineSeconds,
    adapter,
    c.name,
    c.mode,
    c.termSetsPerRound,
    c.seed,
    c.startsAt instanceof Date ? c.startsAt.toISOString() : c.startsAt && 'relative',
    c.endsAt instanceof Date ? c.endsAt.toISOString() : c.endsAt && 'relative',
  ]);
  return createHash('sha256').update(basis).digest('hex').slice(0, 16);
}

function probeIdOf(dir: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(dir, 'identity.json'), 'utf8')) as { probe_id?: string }).probe_id;
  } catch {
    return undefined;
  }
}

export async function startLocalNetwork(options: LocalNetworkOptions): Promise<LocalNetwork> {
  const level = options.logLevel ?? 'info';
  const logDir = join(options.dataDir, 'logs');
  mkdirSync(logDir, { recursive: true, mode: 0o700 });
  // The collector: config read and validated as `silentdrop collector` does, then tuned for a fast local network.
  const config = {
    ...loadCollectorConfig(
      {
        data: options.dataDir,
        port: options.collector?.port ?? 0,
        host: options.collector?.host,
        databaseUrl: options.collector?.databaseUrl,
      },
      options.env ?? process.env,
    ),
    checkinIntervalMs: options.collector?.checkinIntervalMs ?? 10_000,
    sweepIntervalMs: options.collector?.sweepIntervalMs ?? 1000,
    logLevel: level,
  };
  const count = options.collector?.count ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > 16) {
    throw new Error(`collector count must be an integer from 1 to 16, not ${count}`);
  }
  if (count > 1 && !config.databaseUrl) {
    throw new Error(
      'several collectors need a Postgres server (databaseUrl): a PGlite folder belongs to one process',
    );
  }
  const collectors: RunningCollector[] = [];
  const closeCollectors = async () => {
    for (const c of [...collectors].reverse()) await c.close().catch(() => undefined);
  };
  let fleet: LocalFleet;
  try {
    for (let i = 0; i < count; i++) {
      const name = i === 0 ? 'collector' : `collector-${i + 1}`;
      collectors.push(
        await startCollector(config, {
          logger: createLogger({
            level,
            destination: cappedLogDestination(join(logDir, `${name}.log`)),
          }),
          ...(options.collector?.screenClearance === undefined
            ? {}
            : { followups: { screenClearance: options.collector.screenClearance } }),
        }),
      );
    }
    const [first, ...more] = collectors as [RunningCollector, ...RunningCollector[]];
    fleet = await startLocalFleet(options, {
      url: first.url,
      adminToken: config.adminToken,
      moreUrls: more.map((c) => c.url),
    });
  } catch (err) {
    await closeCollectors();
    throw err;
  }
  const collector = collectors[0] as RunningCollector;
  let stopping: Promise<void> | undefined;
  return {
    ...fleet,
    collector,
    collectors: [...collectors],
    stop() {
      stopping ??= fleet.stop().then(closeCollectors);
      return stopping;
    },
  };
}

/**
 * The network without its collector: testbed, accounts and conversations, probes enrolled
 * through `collector`'s admin API, and the campaign. The collector may be another process
 * (the fault suite runs it as `silentdrop collector` to kill and restart it).
 */
export async function startLocalFleet(
  options: LocalFleetOptions,
  collector: CollectorEndpoint,
): Promise<LocalFleet> {
  const dataDir = options.dataDir;
  const adapter = options.adapter ?? 'testbed';
  const mode = options.probeMode ?? 'process';
  const level = options.logLevel ?? 'info';
  const logDir = join(dataDir, 'logs');
  mkdirSync(logDir, { recursive: true, mode: 0o700 });
  const cleanups: (() => Promise<void>)[] = [];
  const cleanUp = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };

  try {
    const admin = new AdminClient(collector.url, collector.adminToken);

    const testbed = await startTestbed({
      policy: options.policy,
      port: options.testbed?.port ?? 0,
      ...(options.testbed?.persist === false ? {} : { stateFile: join(dataDir, 'testbed', 'state.json') }),
      logger: fileLogger(logDir, 'testbed', level),
      ...(options.testbed?.seed === undefined ? {} : { seed: options.testbed.seed }),
      ...(options.testbed?.rateLimit === false ? { rateLimit: false } : {}),
    });
    cleanups.push(() => testbed.close());

    // Accounts and conversations on the platform (the same ones as last run, if any).
    const previous = readState(dataDir);
    const passwords = new Map((previous?.accounts ?? []).map((a) => [a.handle, a.password]));
    const accounts = planAccounts(options.regions, options.handlePrefix ?? '', passwords);
    writeState(dataDir, { ...previous, version: 1, accounts });
    const conversations = await setUpPlatform(testbed.url, accounts, 'silentdrop canaries');

    // Probes: one per region, enrolled on first run only.
    const probeUrls: string[] = [];
    for (const url of [collector.url, ...(collector.moreUrls ?? [])]) {
      probeUrls.push(options.probeCollectorUrl ? await options.probeCollectorUrl(url) : url);
    }
    const probeCollectorUrl = probeUrls[0] as string;
    const specs = new Map<string, ProbeSpec>();
    let enrolled = 0;
    let asn = 64_500;
    for (const [index, region] of Object.keys(options.regions).entries()) {
      const spec: ProbeSpec = {
        region,
        dir: join(dataDir, 'probes', region),
        accounts: accounts.filter((a) => a.region === region),
        adapter,
        collectorUrl: probeUrls[index % probeUrls.length] as string,
        testbedUrl: testbed.url,
        checkinCron: options.probeCheckinCron ?? '*/5 * * * * *',
        asn: asn++,
        logLevel: level,
        ...(options.adapterSettings ? { settings: options.adapterSettings } : {}),
        ...(options.probeEnv?.[region] ? { env: options.probeEnv[region] } : {}),
      };
      let token: string | undefined;
      if (!hasIdentity(spec.dir)) {
        token = (await admin.enrollmentToken(`local-${region.toLowerCase()}`)).token;
        enrolled++;
      }
      writeProbeConfig(spec, token);
      specs.set(region, spec);
    }
    const probes = new Map<string, RunningProbe>();
    const stopProbes = async () => {
      await Promise.all([...probes.values()].map((p) => p.stop()));
    };
    cleanups.push(stopProbes);
    const startedAt = Date.now();
    const started = await Promise.all([...specs.values()].map((s) => runProbe(s, mode)));
    for (const p of started) probes.set(p.region, p);
    const probeIds = await waitForCheckins(
      admin,
      specs,
      probes,
      startedAt,
      options.startupTimeoutMs ?? 60_000,
    );

    // The campaign: reused when an earlier run made one from the same inputs.
    const refs = conversations.map((c) => c.ref);
    const fp = fingerprint(options, refs, adapter);
    const name = options.campaign?.name ?? 'local network';
    let campaign: Campaign | undefined;
    let campaignCreated = false;
    const state = readState(dataDir) ?? { version: 1 as const, accounts };
    if (state.campaign?.fingerprint === fp) {
      campaign = (await admin.campaigns()).find((c) => c.id === state.campaign?.id);
    }
    if (!campaign) {
      const list = await admin.termList(`${name} ${fp}`, options.termSets);
      const c = options.campaign ?? {};
      const now = new Date();
      const at = (t: Date | ((now: Date) => Date) | undefined) => (typeof t === 'function' ? t(now) : t);
      const startsAt = at(c.startsAt);
      const endsAt = at(c.endsAt);
      campaign = await admin.createCampaign({
        name,
        mode: c.mode ?? 'monitor',
        term_list_ids: [list.id],
        conversations: { platform: adapter, refs },
        cadence: options.cadence,
        deadline_seconds: options.deadlineSeconds,
        term_sets_per_round: c.termSetsPerRound ?? options.termSets.length,
        seed: c.seed ?? randomBytes(8).toString('hex'),
        ...(startsAt ? { starts_at: startsAt.toISOString() } : {}),
        ...(endsAt ? { ends_at: endsAt.toISOString() } : {}),
      });
      campaignCreated = true;
      writeState(dataDir, { ...state, campaign: { id: campaign.id, fingerprint: fp, name } });
    }

    let stopping: Promise<void> | undefined;
    return {
      dataDir,
      probeCollectorUrl,
      testbed,
      admin,
      accounts,
      conversations,
      campaign,
      campaignCreated,
      probeIds,
      enrolled,
      probes,
      async restartProbe(region) {
        const spec = specs.get(region);
        if (!spec) throw new Error(`no probe for region ${region}`);
        await probes.get(region)?.stop();
        const p = await runProbe(spec, mode);
        probes.set(region, p);
        return p;
      },
      stop() {
        stopping ??= cleanUp();
        return stopping;
      },
    };
  } catch (err) {
    await cleanUp();
    throw err;
  }
}

/** Waits until every probe registered and checked in after `since`; returns their ids by region. */
async function waitForCheckins(
  admin: AdminClient,
  specs: Map<string, ProbeSpec>,
  probes: Map<string, RunningProbe>,
  since: number,
  timeoutMs: number,
): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | undefined;
  for (const p of probes.values()) {
    void p.exited.then((code) => {
      exited ??= `the ${p.region} probe exited (code ${code}) while starting; see ${join(p.dir, 'probe.log')}`;
    });
  }
  for (;;) {
    if (exited) throw new Error(exited);
    const ids: Record<string, string> = {};
    for (const [region, spec] of specs) {
      const id = probeIdOf(spec.dir);
      if (id) ids[region] = id;
    }
    if (Object.keys(ids).length === specs.size) {
      const seen = new Map((await admin.probes()).map((p) => [p.id, p.last_checkin_at]));
      const ready = Object.values(ids).every((id) => {
        const at = seen.get(id);
        return at !== undefined && at !== null && Date.parse(at) >= since - 1000;
      });
      if (ready) return ids;
    }
    if (Date.now() > deadline) {
      const missing = [...specs.keys()].filter((r) => !ids[r]);
      throw new Error(
        `probes did not check in within ${Math.round(timeoutMs / 1000)} s` +
          (missing.length ? ` (not registered: ${missing.join(', ')})` : '') +
          `; see the probe.log files under ${join([...specs.values()][0]?.dir ?? '.', '..')}`,
      );
    }
    await sleep(250);
  }
}
