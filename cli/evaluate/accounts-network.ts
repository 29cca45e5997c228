/**
 * `silentdrop evaluate --accounts FILE` (issue 7): the local network without a testbed —
 * the collector (embedded Postgres), one in-process probe per registration region holding
 * that region's accounts of an existing platform, and a campaign over every conversation
 * the probes report. Direct conversations are every ordered pair of different handles,
 * group conversations the listed rooms (the xmpp adapter derives both from its settings).
 *
 * File format:
 *   platform: xmpp
 *   server: { host: 127.0.0.1, port: 5222, domain: localhost, tls: false }
 *   accounts: [{ handle: cn1@localhost, password: "…", region: CN }, …]
 *   groups: [{ room: g1@conference.localhost, members: [cn1@localhost, …] }]
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { type Static, Type } from 'typebox';
import { Value } from 'typebox/value';
import { parseDocument, stringify } from 'yaml';
import { loadConfig as loadCollectorConfig } from '../../collector/config.ts';
import type { Db } from '../../collector/db/open.ts';
import { createLogger } from '../../collector/logger.ts';
import { startCollector } from '../../collector/server.ts';
import { type ProbeHandle, startProbe } from '../../probe/agent.ts';
import { loadConfig as loadProbeConfig } from '../../probe/config.ts';
import { Region } from '../../protocol/index.ts';
import { AdminClient } from '../local/admin-client.ts';
import { cappedLogDestination } from '../local/log-files.ts';
import type { EvaluationMode } from './run.ts';

export interface AccountsFile {
  platform: 'xmpp';
  server: Record<string, unknown>;
  accounts: { handle: string; password: string; region: string }[];
  groups?: { room: string; members: string[] }[];
}

/** The largest accounts file read (a few hundred accounts fit in a few kB). */
export const MAX_ACCOUNTS_FILE_BYTES = 256 * 1024;

/** A bad accounts file: the message names the file and the field. */
export class AccountsFileError extends Error {
  readonly code = 'SD_ERR_ACCOUNTS_FILE';
  constructor(message: string) {
    super(message);
    this.name = 'AccountsFileError';
  }
}

const Jid = Type.String({ minLength: 3, maxLength: 320, pattern: '^[^\\s@/"&\'<>:]+@[A-Za-z0-9.-]+$' });
const AccountsFileSchema = Type.Object(
  {
    platform: Type.Literal('xmpp'),
    server: Type.Object(
      {
        host: Type.String({ minLength: 1, maxLength: 253 }),
        port: Type.Integer({ minimum: 1, maximum: 65_535 }),
        domain: Type.String({ minLength: 1, maxLength: 253 }),
        tls: Type.Optional(Type.Union([Type.Boolean(), Type.String({ maxLength: 16 })])),
      },
      // Further adapter settings (timeouts, resource) pass through; the adapter validates them.
      { maxProperties: 32 },
    ),
    accounts: Type.Array(
      Type.Object(
        { handle: Jid, password: Type.String({ minLength: 1, maxLength: 1024 }), region: Region },
        { additionalProperties: false },
      ),
      { minItems: 2, maxItems: 200 },
    ),
    groups: Type.Optional(
      Type.Array(
        Type.Object(
          { room: Jid, members: Type.Array(Jid, { minItems: 1, maxItems: 200 }) },
          { additionalProperties: false },
        ),
        { maxItems: 100 },
      ),
    ),
  },
  { additionalProperties: false },
);

/** Reads and validates an accounts file (YAML or JSON); throws AccountsFileError naming the field. */
export function parseAccountsFile(text: string, source = 'accounts file'): AccountsFile {
  const bad = (what: string): never => {
    throw new AccountsFileError(`${source}: ${what}`);
  };
  if (Buffer.byteLength(text) > MAX_ACCOUNTS_FILE_BYTES)
    bad(`larger than ${MAX_ACCOUNTS_FILE_BYTES / 1024} KiB; an accounts file lists accounts, not data`);
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) bad(`not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    bad(`not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('not a YAML/JSON mapping');
  if (!Value.Check(AccountsFileSchema, raw)) {
    const first = [...Value.Errors(AccountsFileSchema, raw)][0];
    const field = first?.instancePath.replace(/^\//, '').replaceAll('/', '.') || '(top level)';
    bad(`${field}: ${first?.message ?? 'invalid'}`);
  }
  const d = raw as Static<typeof AccountsFileSchema>;
  const handles = new Set<string>();
  for (const a of d.accounts) {
    if (handles.has(a.handle.toLowerCase())) bad(`accounts: ${a.handle} is listed twice`);
    handles.add(a.handle.toLowerCase());
  }
  return {
    platform: 'xmpp',
    server: d.server,
    accounts: d.accounts.map((a) => ({ handle: a.handle, password: a.password, region: a.region })),
    groups: (d.groups ?? []).map((g) => ({ room: g.room, members: [...g.members] })),
  };
}

export function readAccountsFile(path: string): AccountsFile {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (err) {
    throw new AccountsFileError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (size > MAX_ACCOUNTS_FILE_BYTES)
    throw new AccountsFileError(`${path}: larger than ${MAX_ACCOUNTS_FILE_BYTES / 1024} KiB`);
  return parseAccountsFile(readFileSync(path, 'utf8'), path);
}

export interface AccountsNetworkOptions {
  dataDir: string;
  accounts: AccountsFile;
  termSets: readonly (readonly string[])[];
  cadence: string;
  deadlineSeconds: number;
  mode: EvaluationMode;
  seed: string;
  logLevel: string;
  startupTimeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startAccountsNetwork(o: AccountsNetworkOptions): Promise<{
  db: Db;
  campaignId: string;
  stop(): Promise<void>;
}> {
  const logDir = join(o.dataDir, 'logs');
  mkdirSync(logDir, { recursive: true, mode: 0o700 });
  const config = {
    ...loadCollectorConfig({ data: o.dataDir, port: 0, host: '127.0.0.1' }, process.env),
    checkinIntervalMs: 5000,
    sweepIntervalMs: 1000,
    logLevel: o.logLevel,
  };
  const collector = await startCollector(config, {
    logger: createLogger({
      level: o.logLevel,
      destination: cappedLogDestination(join(logDir, 'collector.log')),
    }),
  });
  const probes: ProbeHandle[] = [];
  const stop = async () => {
    await Promise.all(probes.map((p) => p.stop().catch(() => undefined)));
    await collector.close();
  };
  try {
    const admin = new AdminClient(collector.url, config.adminToken);
    const regions = [...new Set(o.accounts.accounts.map((a) => a.region))];
    const settings = {
      server: o.accounts.server,
      accounts: o.accounts.accounts.map((a) => a.handle),
      groups: o.accounts.groups ?? [],
    };
    let asn = 64_600;
    for (const region of regions) {
      const dir = join(o.dataDir, 'probes', region);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const token = (await admin.enrollmentToken(`evaluate-${region.toLowerCase()}`)).token;
      const file = join(dir, 'probe.yaml');
      writeFileSync(
        file,
        stringify({
          collector_url: collector.url,
          enrollment_token: token,
          data_dir: dir,
          country: region,
          asn: asn++,
          label: `evaluate-${region.toLowerCase()}`,
          checkin_cron: '* * * * * *',
          log_level: o.logLevel,
          pacing: { min_ms: 20, max_ms: 100 },
          rate_limits: { per_minute: 600, per_hour: 20_000, per_day: 200_000 },
          budget: { per_day: 1_000_000 },
          accounts: o.accounts.accounts
            .filter((a) => a.region === region)
            .map((a) => ({
              platform: 'xmpp',
              handle: a.handle,
              region: a.region,
              credentials: { password: a.password },
              settings,
            })),
        }),
        { mode: 0o600 },
      );
      const logger = pino({ level: o.logLevel }, cappedLogDestination(join(dir, 'probe.log')));
      probes.push(await startProbe(await loadProbeConfig(file), { logger, flushTimeoutMs: 3000 }));
    }

    // Wait until every account is known with its conversations (probes report them at check-in).
    const handles = new Set(o.accounts.accounts.map((a) => a.handle.toLowerCase()));
    const deadline = Date.now() + (o.startupTimeoutMs ?? 60_000);
    for (;;) {
      const known = (await admin.accounts())
        .filter((a) => a.platform === 'xmpp')
        .map((a) => a.handle.toLowerCase());
      if ([...handles].every((h) => known.includes(h))) break;
      if (Date.now() > deadline)
        throw new Error('the probes did not report every account within the start-up time');
      await sleep(250);
    }
    const list = await admin.termList(`evaluate ${o.seed}`, o.termSets);
    const campaign = await admin.createCampaign({
      name: 'evaluate',
      mode: o.mode,
      term_list_ids: [list.id],
      conversations: { platform: 'xmpp' },
      cadence: o.cadence,
      deadline_seconds: o.deadlineSeconds,
      term_sets_per_round: o.termSets.length,
      seed: o.seed || randomBytes(8).toString('hex'),
    });
    return { db: collector.database.db, campaignId: campaign.id, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
