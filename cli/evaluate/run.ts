/**
 * `silentdrop evaluate`: a whole network on this machine tests a term list until every
 * verdict is settled (collector/findings.ts, sequential design) or the time is up, then the
 * report is read from Postgres (report.ts).
 *
 * Two platforms: `--policy` starts the testbed with that policy through the local network
 * (cli/local/network.ts: collector, testbed, accounts in direct chats and a group, one probe
 * per region of the policy); `--accounts` points probes at an existing XMPP server with the
 * accounts of an accounts file (accounts-network.ts).
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runningScreens } from '../../collector/db/evaluation.ts';
import { parseTermFile } from '../../collector/planning/terms.ts';
import { resolvePolicy } from '../../testbed/policy.ts';
import { startLocalNetwork } from '../local/network.ts';
import { type AccountsFile, readAccountsFile, startAccountsNetwork } from './accounts-network.ts';
import { type ProgressSample, progressLine } from './progress.ts';
import { type EvaluationReport, readReport } from './report.ts';

export type EvaluationMode = 'isolate' | 'screen';

export interface EvaluationOptions {
  /** A testbed policy (file or object), or … */
  policy?: string | Record<string, unknown>;
  /** … an accounts file (path or parsed) of an existing platform. */
  accounts?: string | AccountsFile;
  /** Term sets, or the text of a terms file (one set a line, ` + ` between terms). */
  terms: string | string[][];
  /** Stop after this long even when verdicts are open (default 10 minutes). */
  timeoutMs?: number;
  /** Keep everything here (default: a temporary folder, removed afterwards). */
  dataDir?: string;
  /** Campaign cadence, cron with seconds (default every 4 s). */
  cadence?: string;
  /** Canary deadline in seconds (default 5). */
  deadlineSeconds?: number;
  /** Accounts per region on the testbed (default 3). */
  accountsPerRegion?: number;
  /** Default `screen` (docs/decisions/014); `isolate` judges every set alone. */
  mode?: EvaluationMode;
  seed?: string;
  /** Testbed seed (background loss draws). */
  testbedSeed?: number;
  /** postgres://… for the collector (default: PGlite in the data folder). */
  databaseUrl?: string;
  /** Collectors on that database, the probes split between them (default 1; more need `databaseUrl`). */
  collectors?: number;
  /** Progress lines (the CLI prints them). */
  onProgress?: (line: string) => void;
  logLevel?: string;
  /**
   * Screens clear a set only with the clearance rule of decision 024 (testbed only); default: the
   * collector's configuration (SILENTDROP_SCREEN_CLEARANCE, default true, decision 038).
   */
  screenClearance?: boolean;
}

export interface EvaluationResult {
  report: EvaluationReport;
  settled: boolean;
  durationMs: number;
  dataDir: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function readTerms(terms: string | string[][]): string[][] {
  if (Array.isArray(terms)) return terms;
  const { termSets, errors } = parseTermFile(terms);
  if (errors.length > 0) {
    throw new Error(`terms: ${errors.map((e) => `line ${e.line}: ${e.message}`).join('; ')}`);
  }
  if (termSets.length === 0) throw new Error('terms: no term set in the file');
  return termSets;
}

export async function runEvaluation(o: EvaluationOptions): Promise<EvaluationResult> {
  if (!o.policy === !o.accounts) throw new Error('give either a policy or an accounts file');
  if (o.accounts && (o.collectors ?? 1) > 1)
    throw new Error('several collectors run with a testbed policy only');
  const termSets = readTerms(o.terms);
  const started = Date.now();
  const ownDir = o.dataDir === undefined;
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'silentdrop-evaluate-'));
  const deadlineSeconds = o.deadlineSeconds ?? 5;
  const cadence = o.cadence ?? '*/4 * * * * *';
  const timeoutMs = o.timeoutMs ?? 10 * 60_000;
  const mode = o.mode ?? 'screen';
  const seed = o.seed ?? `evaluate-${started}`;
  const progress = o.onProgress ?? (() => {});
  const level = o.logLevel ?? 'warn';

  let net: { db: import('../../collector/db/open.ts').Db; campaignId: string; stop(): Promise<void> };
  if (o.policy) {
    const policy = resolvePolicy(o.policy);
    const perRegion = o.accountsPerRegion ?? 3;
    const local = await startLocalNetwork({
      dataDir,
      policy: o.policy,
      termSets,
      regions: Object.fromEntries(policy.regions.map((r) => [r, perRegion])),
      cadence,
      deadlineSeconds,
      probeMode: 'in-process',
      campaign: { name: 'evaluate', mode, termSetsPerRound: termSets.length, seed },
      collector: {
        checkinIntervalMs: 5000,
        sweepIntervalMs: 2000,
        ...(o.databaseUrl === undefined ? {} : { databaseUrl: o.databaseUrl }),
        ...(o.collectors === undefined ? {} : { count: o.collectors }),
        ...(o.screenClearance === undefined ? {} : { screenClearance: o.screenClearance }),
      },
      probeCheckinCron: '*/2 * * * * *',
      // A temporary folder is removed afterwards: the testbed keeps no state file there (it is
      // written whole, synchronously, after changes, and stalled the event loop as messages grew).
      testbed: {
        ...(o.testbedSeed === undefined ? {} : { seed: o.testbedSeed, rateLimit: false as const }),
        ...(ownDir ? { persist: false as const } : {}),
      },
      logLevel: level,
    });
    net = { db: local.collector.database.db, campaignId: local.campaign.id, stop: () => local.stop() };
  } else {
    const accounts = typeof o.accounts === 'string' ? readAccountsFile(o.accounts ?? '') : o.accounts;
    if (!accounts) throw new Error('no accounts');
    const remote = await startAccountsNetwork({
      dataDir,
      accounts,
      termSets,
      cadence,
      deadlineSeconds,
      mode,
      seed,
      logLevel: level,
    });
    net = { db: remote.db, campaignId: remote.campaignId, stop: () => remote.stop() };
  }

  try {
    let last = await readReport(net.db, net.campaignId, termSets);
    let lastLine = 0;
    const samples: ProgressSample[] = [];
    while (!last.settled && Date.now() - started < timeoutMs) {
      await sleep(1000);
      last = await readReport(net.db, net.campaignId, termSets);
      const now = Date.now();
      samples.push({ atMs: now, settled: last.report.findings.filter((f) => f.settled).length });
      while (samples.length > 0 && (samples[0]?.atMs ?? now) < now - 120_000) samples.shift();
      if (now - lastLine > 5000) {
        lastLine = now;
        const screens = await runningScreens(net.db, net.campaignId);
        progress(progressLine(last, now - started, samples, screens));
      }
    }
    const durationMs = Date.now() - started;
    last.report.run = {
      settled: last.settled,
      open: last.open,
      seconds: Math.round(durationMs / 1000),
      mode,
      cadence,
      deadline_seconds: deadlineSeconds,
      platform: o.policy ? 'testbed' : 'xmpp',
      ...(last.refuted.length > 0 ? { refuted_combinations: last.refuted } : {}),
    };
    return { report: last.report, settled: last.settled, durationMs, dataDir };
  } finally {
    await net.stop();
    // async: removing a PGlite folder takes most of a second, which would stall the event loop
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
  }
}
