/**
 * The collector as production runs it: `silentdrop collector` in a process of its own, on a
 * fixed port (so probes find it again after a restart), on a Postgres server. A case can
 * kill it (`kill('SIGKILL')`), stop it (SIGTERM, timed) and start it again on the same
 * data folder, port and settings. Its output goes to `<data>/logs/collector.log`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { anyFreePort } from '../../cli/local/ports.ts';
import { BIN, trackChild } from '../../cli/local/probes.ts';

export interface CollectorProcessOptions {
  dataDir: string;
  databaseUrl: string;
  adminToken: string;
  /** SILENTDROP_* settings (check-in interval, sweep interval, …). */
  env?: Record<string, string>;
  /** How long a start may take until /healthz answers 200 (default 60 s). */
  startTimeoutMs?: number;
}

export interface CollectorProcess {
  url: string;
  adminToken: string;
  /** The current process id (a new one after each start). */
  pid(): number | undefined;
  running(): boolean;
  kill(signal: NodeJS.Signals): void;
  /** Resolves when the current process has exited. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the ms it took to exit, and how. */
  stop(graceMs?: number): Promise<{ ms: number; code: number | null; signal: NodeJS.Signals | null }>;
  /** Starts it again (after it exited); waits until /healthz answers 200. */
  start(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startCollectorProcess(o: CollectorProcessOptions): Promise<CollectorProcess> {
  const port = await anyFreePort();
  const url = `http://127.0.0.1:${port}`;
  const logDir = join(o.dataDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, 'collector.log');
  let child: ChildProcess | undefined;
  let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> = Promise.resolve({
    code: null,
    signal: null,
  });

  const tail = () => {
    try {
      return readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '';
    }
  };

  const start = async () => {
    if (child && child.exitCode === null && child.signalCode === null)
      throw new Error('collector is running');
    const log = createWriteStream(logFile, { flags: 'a' });
    const proc = spawn(
      process.execPath,
      [BIN, 'collector', '--port', String(port), '--host', '127.0.0.1', '--data', o.dataDir],
      {
        cwd: o.dataDir,
        env: {
          ...process.env,
          SILENTDROP_DEBUG: '',
          DATABASE_URL: o.databaseUrl,
          SILENTDROP_ADMIN_TOKEN: o.adminToken,
          LOG_LEVEL: 'info',
          ...o.env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child = proc;
    trackChild(proc);
    proc.stdout?.pipe(log, { end: false });
    proc.stderr?.pipe(log, { end: false });
    exit = new Promise((resolve) =>
      proc.once('exit', (code, signal) => {
        log.end();
        resolve({ code, signal });
      }),
    );
    const deadline = Date.now() + (o.startTimeoutMs ?? 60_000);
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(
          `the collector exited while starting (${proc.exitCode ?? proc.signalCode}):\n${tail()}`,
        );
      }
      const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`the collector did not answer /healthz in time:\n${tail()}`);
      await sleep(200);
    }
  };

  await start();
  return {
    url,
    adminToken: o.adminToken,
    pid: () => child?.pid,
    running: () => !!child && child.exitCode === null && child.signalCode === null,
    kill(signal) {
      child?.kill(signal);
    },
    exited: () => exit,
    async stop(graceMs = 15_000) {
      const started = Date.now();
      if (!child || child.exitCode !== null || child.signalCode !== null) {
        return { ms: 0, ...(await exit) };
      }
      child.kill('SIGTERM');
      const proc = child;
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      const how = await exit;
      clearTimeout(timer);
      return { ms: Date.now() - started, ...how };
    },
    start,
  };
}
