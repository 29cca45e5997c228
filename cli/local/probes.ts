/**
 * The network's probes: one per region, each with its own folder
 * `<data>/probes/<region>/` holding `probe.yaml` (0600: it carries the accounts'
 * passwords), the probe's data (identity.json with its key and id, outbox, account
 * state) and, for a separate process, `probe.log`. A probe runs either as a separate
 * process (`silentdrop probe --config …/probe.yaml`, real HTTP, like production) or
 * in-process through `startProbe` (fast, for tests).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { type ProbeHandle, startProbe } from '../../probe/agent.ts';
import { loadConfig } from '../../probe/config.ts';
import { cappedLogDestination } from './log-files.ts';
import type { LocalAccount } from './platform.ts';
import { ProcessLog } from './process-log.ts';

const here = dirname(fileURLToPath(import.meta.url));
/**
 * The command a probe process runs: the compiled CLI when this code is compiled (dist/),
 * else the repository's launcher, which runs the sources through tsx.
 */
export const BIN = import.meta.url.endsWith('.ts')
  ? resolve(here, '../../bin/silentdrop.js')
  : resolve(here, '../main.js');

export type LocalAdapter = 'testbed' | 'browser';
export type ProbeMode = 'process' | 'in-process';

export interface ProbeSpec {
  region: string;
  /** `<data>/probes/<region>` */
  dir: string;
  accounts: LocalAccount[];
  adapter: LocalAdapter;
  collectorUrl: string;
  testbedUrl: string;
  /** node-cron expression (seconds allowed). */
  checkinCron: string;
  asn: number;
  /** Adapter settings merged into every account's `settings`. */
  settings?: Record<string, unknown>;
  logLevel?: string;
  /** Extra environment for a separate probe process (e.g. libfaketime in the fault tests). */
  env?: NodeJS.ProcessEnv;
}

export const configPath = (dir: string) => join(dir, 'probe.yaml');
export const hasIdentity = (dir: string) => existsSync(join(dir, 'identity.json'));

/** Writes the probe's config; the enrollment token only when the probe has no identity yet. */
export function writeProbeConfig(spec: ProbeSpec, enrollmentToken: string | undefined): string {
  mkdirSync(spec.dir, { recursive: true, mode: 0o700 });
  const browser = spec.adapter === 'browser';
  const config = {
    collector_url: spec.collectorUrl,
    ...(enrollmentToken ? { enrollment_token: enrollmentToken } : {}),
    data_dir: '.',
    country: spec.region,
    asn: spec.asn,
    label: `local-${spec.region.toLowerCase()}`,
    // The local network's accounts are on this machine's testbed: no platform, no operator risk.
    risks_accepted: true,
    checkin_cron: spec.checkinCron,
    log_level: spec.logLevel ?? 'info',
    // A local network sends far more than a real account may: pace lightly.
    pacing: { min_ms: 50, max_ms: 300 },
    rate_limits: { per_minute: 600, per_hour: 20_000, per_day: 200_000 },
    budget: { per_day: 1_000_000 },
    accounts: spec.accounts.map((a) => ({
      platform: spec.adapter,
      handle: a.handle,
      region: a.region,
      credentials: { password: a.password },
      settings: browser
        ? { recipe: 'testbed', url: spec.testbedUrl, ...spec.settings }
        : { url: spec.testbedUrl, ...spec.settings },
    })),
  };
  const file = configPath(spec.dir);
  writeFileSync(
    file,
    `# Written by the local network (silentdrop demo); rewritten on every start.\n${stringify(config)}`,
    { mode: 0o600 },
  );
  return file;
}

export interface RunningProbe {
  region: string;
  dir: string;
  /** The OS process id (separate process) or undefined (in-process). */
  pid: number | undefined;
  /** Resolves with the exit code (null after a signal) when the process ends. */
  exited: Promise<number | null>;
  /** SIGTERM (graceful), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** Kill at once (separate process only): `kill('SIGKILL')` is the crash test. */
  kill(signal: NodeJS.Signals): void;
  /** The in-process handle (in-process mode only). */
  handle?: ProbeHandle;
}

/** Every child process started here (or given to trackChild), killed on exit of this process so none is orphaned. */
const children = new Set<ChildProcess>();
let exitHookInstalled = false;
export function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
  }
}

export async function runProbe(spec: ProbeSpec, mode: ProbeMode): Promise<RunningProbe> {
  const file = configPath(spec.dir);
  if (mode === 'in-process') {
    const config = await loadConfig(file);
    const logger = pino(
      { level: spec.logLevel ?? 'warn' },
      cappedLogDestination(join(spec.dir, 'probe.log')),
    );
    const handle = await startProbe(config, { logger, flushTimeoutMs: 3000 });
    const exited = handle.stopped.then(() => 0);
    return {
      region: spec.region,
      dir: spec.dir,
      pid: undefined,
      exited,
      handle,
      async stop() {
        await handle.stop();
        logger.flush();
      },
      kill() {
        throw new Error('an in-process probe cannot be killed; run it as a separate process');
      },
    };
  }

  // A log the disk refuses (the probe's folder full) stops neither the probe nor this
  // process, and resumes when the disk takes writes again (process-log.ts).
  const log = new ProcessLog(join(spec.dir, 'probe.log'));
  const child = spawn(process.execPath, [BIN, 'probe', '--config', file], {
    cwd: spec.dir,
    env: { ...process.env, SILENTDROP_DEBUG: '', ...spec.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);
  child.stdout?.on('data', (chunk: Buffer) => log.write(chunk));
  child.stderr?.on('data', (chunk: Buffer) => log.write(chunk));
  // Closed once the child's output has ended, not at its exit (output may still be in flight).
  child.once('close', () => void log.close());
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  return {
    region: spec.region,
    dir: spec.dir,
    pid: child.pid,
    exited,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    kill(signal) {
      child.kill(signal);
    },
  };
}
