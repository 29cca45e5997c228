#!/usr/bin/env node
// `npm run check:package [-- --prebuilt]`: what a user gets from the package, end to end.
// Packs the repository (`npm pack` builds it first; --prebuilt packs the existing dist/), checks the tarball's contents, installs it
// with `npm install -g --prefix <tmp>` (a probe-only install: no PGlite, no dashboard
// or build tools), runs `silentdrop --version` and `silentdrop probe --help`, adds
// the embedded database (`npm install -g @electric-sql/pglite`), starts
// `silentdrop collector` on a free port with its data in <tmp>, waits for /healthz and
// the dashboard, and stops it with SIGTERM. Exits non-zero on the first failure.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const work = mkdtempSync(join(tmpdir(), 'sd-package-'));
const prefix = join(work, 'prefix');
const keep = process.env.SILENTDROP_KEEP_PACKAGE_CHECK === '1';
// --prebuilt: pack the existing dist/ (skips `npm pack`'s prepack build).
const prebuilt = process.argv.includes('--prebuilt');

function fail(message) {
  console.error(`check:package: FAIL: ${message}`);
  process.exitCode = 1;
  throw new Error(message);
}
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r;
}
const step = (text) => console.log(`check:package: ${text}`);

try {
  step(prebuilt ? 'npm pack (the existing dist/) …' : 'npm pack (builds first) …');
  const packed = run(
    'npm',
    ['pack', '--json', '--pack-destination', work, ...(prebuilt ? ['--ignore-scripts'] : [])],
    { cwd: root },
  );
  const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')))[0];
  const tarball = join(work, info.filename);
  const files = info.files.map((f) => f.path);
  const must = [
    'bin/silentdrop.js',
    'dist/cli/main.js',
    'dist/dashboard/index.html',
    'dist/migrations/meta/_journal.json',
    'dist/testbed/web/index.html',
    'dist/testbed/policies/demo.yaml',
    'LICENSE',
    'README.md',
    'CHANGELOG.md',
    'probe.example.yaml',
    'collector.example.env',
  ];
  for (const f of must) if (!files.includes(f)) fail(`the tarball lacks ${f}`);
  const wrong = files.filter(
    (f) =>
      f.endsWith('.ts') ||
      /\.test\.js$/.test(f) ||
      f === 'dist/collector/http/dashboard-build.js' ||
      f.startsWith('node_modules/'),
  );
  if (wrong.length > 0) fail(`the tarball holds files it should not: ${wrong.slice(0, 10).join(', ')}`);
  step(`${info.filename}: ${files.length} files, ${(info.size / 1e6).toFixed(1)} MB packed`);

  step('npm install -g --prefix <tmp> <tarball> (probe-only: optional peers left out) …');
  run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], {
    env: { ...process.env, PUPPETEER_SKIP_DOWNLOAD: '1' },
  });
  const bin = join(prefix, 'bin', 'silentdrop');
  const installed = join(prefix, 'lib', 'node_modules', 'silentdrop');
  if (!existsSync(bin)) fail(`no ${bin} after the install`);
  const nested = existsSync(join(installed, 'node_modules'))
    ? readdirSync(join(installed, 'node_modules'))
    : [];
  const globalMods = readdirSync(join(prefix, 'lib', 'node_modules'));
  for (const dev of ['tsx', 'vite', 'echarts', 'typescript', 'vitest', 'drizzle-kit', '@electric-sql']) {
    if (nested.includes(dev) || globalMods.includes(dev)) fail(`a probe-only install pulled ${dev}`);
  }

  const t0 = process.hrtime.bigint();
  const version = run(bin, ['--version']);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (version.stdout.trim() !== pkg.version) fail(`--version printed "${version.stdout.trim()}"`);
  step(`silentdrop --version: ${version.stdout.trim()} in ${ms.toFixed(0)} ms`);
  const help = run(bin, ['probe', '--help']);
  if (!help.stdout.includes('--config')) fail(`probe --help did not show --config:\n${help.stdout}`);
  step('silentdrop probe --help: ok');

  // Without the optional peer, a collector on the embedded database says what to install.
  const bare = spawnSync(bin, ['collector', '--port', '0', '--data', join(work, 'bare')], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (
    bare.status === 0 ||
    !/SD_ERR_(MISSING_DEPENDENCY|DATABASE)\b.*@electric-sql\/pglite/.test(bare.stderr)
  ) {
    fail(`a collector without PGlite did not name it (exit ${bare.status}):\n${bare.stderr}`);
  }
  step('silentdrop collector without @electric-sql/pglite: names the package to install');

  const pglite = pkg.peerDependencies['@electric-sql/pglite'];
  step(`npm install -g --prefix <tmp> @electric-sql/pglite@${pglite} (the embedded database) …`);
  run('npm', [
    'install',
    '-g',
    '--prefix',
    prefix,
    '--prefer-offline',
    '--no-audit',
    '--no-fund',
    `@electric-sql/pglite@${pglite}`,
  ]);

  step('silentdrop collector --port 0 (embedded database in <tmp>) …');
  const child = spawn(bin, ['collector', '--port', '0', '--data', join(work, 'data')], {
    cwd: work,
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening on" line in 90 s:\n${output}`)), 90_000);
    const look = () => {
      const m = /listening on (http:\/\/\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]);
      }
    };
    child.stderr.on('data', look);
    child.on('exit', () => reject(new Error(`the collector exited while starting:\n${output}`)));
  }).catch((err) => fail(err.message));
  const health = await fetch(`${url}/healthz`);
  const body = await health.json();
  if (health.status !== 200 || body.status !== 'ok')
    fail(`/healthz answered ${health.status} ${JSON.stringify(body)}`);
  const page = await fetch(`${url}/`);
  const html = await page.text();
  if (page.status !== 200 || !html.includes('href="/source"'))
    fail(`/ answered ${page.status}: ${html.slice(0, 200)}`);
  step(`collector at ${url}: /healthz ok, dashboard served`);
  child.kill('SIGTERM');
  const end = await Promise.race([exited, new Promise((r) => setTimeout(() => r(undefined), 30_000))]);
  if (!end) {
    child.kill('SIGKILL');
    fail('the collector did not stop within 30 s of SIGTERM');
  }
  if (end.code !== 0) fail(`the collector exited with ${JSON.stringify(end)} after SIGTERM:\n${output}`);
  step('collector stopped on SIGTERM: ok');
  step('passed');
} catch (err) {
  if (!process.exitCode) {
    console.error(`check:package: FAIL: ${err.stack ?? err}`);
    process.exitCode = 1;
  }
} finally {
  if (keep) step(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
