/**
 * Footprint bench: the resident memory of a compiled probe process after minutes of
 * canaries on the testbed. Runs the compiled demo (`node dist/cli/main.js demo`: collector,
 * testbed, probes in CN, US and AU as separate `silentdrop probe` processes, a campaign),
 * samples each probe's RSS from /proc every few seconds, and prints each probe's RSS at the
 * end, its peak (VmHWM) and the canaries the network sent. Exit code 1 when a probe's RSS
 * is at or over the limit.
 *
 *   npm run bench:footprint                      (builds first)
 *   npx tsx bench/footprint.ts [--minutes 2] [--limit-mb 100]   (uses the existing dist/)
 *
 * Also times `silentdrop --version` from dist/ (the CLI loads only the command it runs).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '2' },
    'limit-mb': { type: 'string', default: '100' },
  },
});
const minutes = Number(values.minutes);
const limitMb = Number(values['limit-mb']);
const root = new URL('../', import.meta.url).pathname;
const main = join(root, 'dist/cli/main.js');
if (!existsSync(main)) {
  console.error('bench:footprint: no dist/cli/main.js; run `npm run build` (or `npm run bench:footprint`)');
  process.exit(2);
}

/** VmRSS and VmHWM of a process in MB, from /proc (undefined once it is gone). */
function memory(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

// `silentdrop --version`, compiled: best of three (the first pays the disk cache).
const versionMs: number[] = [];
for (let i = 0; i < 3; i += 1) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [main, '--version'], { encoding: 'utf8' });
  versionMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  if (r.status !== 0) throw new Error(`--version failed: ${r.stderr}`);
}

const dataDir = mkdtempSync(join(tmpdir(), 'sd-footprint-'));
const demo: ChildProcess = spawn(
  process.execPath,
  [main, 'demo', '--data', dataDir, '--port', '0', '--progress-seconds', '10'],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } },
);
let output = '';
let lastProgress = '';
demo.stdout?.on('data', (d: Buffer) => {
  output += d;
  const lines = output.split('\n').filter((l) => l.includes('canaries'));
  lastProgress = lines.at(-1) ?? lastProgress;
});
demo.stderr?.on('data', (d: Buffer) => (output += d));
const demoExited = new Promise<number | null>((r) => demo.once('exit', (code) => r(code)));

try {
  // The demo prints "probes  CN 1a2b3c4d (pid 123), US … (pid 456), AU … (pid 789)" once running.
  const started = Date.now();
  let pids: { region: string; pid: number }[] = [];
  while (pids.length === 0) {
    if (Date.now() - started > 300_000) throw new Error(`the demo did not start in 5 minutes:\n${output}`);
    if (demo.exitCode !== null) throw new Error(`the demo exited (${demo.exitCode}):\n${output}`);
    const line = output.split('\n').find((l) => /^\s+probes\s/.test(l));
    if (line)
      pids = [...line.matchAll(/(\w\w) \w+ \(pid (\d+)\)/g)].map((m) => ({
        region: m[1]!,
        pid: Number(m[2]),
      }));
    await sleep(500);
  }
  console.log(
    `bench:footprint: probes ${pids.map((p) => `${p.region} pid ${p.pid}`).join(', ')}; running ${minutes} min …`,
  );
  const maxRss = new Map<number, number>();
  const until = Date.now() + minutes * 60_000;
  while (Date.now() < until) {
    for (const { pid } of pids) {
      const m = memory(pid);
      if (!m) throw new Error(`probe pid ${pid} exited; see ${dataDir}/probes/*/probe.log`);
      maxRss.set(pid, Math.max(maxRss.get(pid) ?? 0, m.rss));
    }
    await sleep(5000);
  }
  let over = false;
  console.log(`network after ${minutes} min: ${lastProgress.trim()}`);
  for (const { region, pid } of pids) {
    const m = memory(pid);
    if (!m) throw new Error(`probe pid ${pid} exited before the end`);
    const worst = Math.max(m.rss, maxRss.get(pid) ?? 0);
    over ||= worst >= limitMb;
    console.log(
      `probe ${region} (pid ${pid}): RSS ${m.rss.toFixed(1)} MB now, ${worst.toFixed(1)} MB highest sampled, ` +
        `VmHWM ${m.hwm.toFixed(1)} MB`,
    );
  }
  console.log(
    `silentdrop --version (compiled): ${Math.min(...versionMs).toFixed(0)} ms best of 3 ` +
      `(${versionMs.map((t) => t.toFixed(0)).join(', ')})`,
  );
  console.log(`limit ${limitMb} MB RSS per probe: ${over ? 'OVER' : 'under'}`);
  process.exitCode = over ? 1 : 0;
} finally {
  demo.kill('SIGTERM');
  const timer = setTimeout(() => demo.kill('SIGKILL'), 30_000);
  await demoExited;
  clearTimeout(timer);
  rmSync(dataDir, { recursive: true, force: true });
}
