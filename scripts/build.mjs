#!/usr/bin/env node
// `npm run build`: compiles the TypeScript to dist/ (tsconfig.build.json), builds the
// dashboard into dist/dashboard with Vite, and copies what the compiled code reads at run
// time: migrations/, the testbed's web client and policies. See docs/decisions/015.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const require = createRequire(import.meta.url);

// A clean tree each time: nothing of an older build (a deleted module) survives.
rmSync(dist, { recursive: true, force: true });

const tsc = spawnSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

const { build } = await import('vite');
await build({
  configFile: join(root, 'dashboard', 'vite.config.ts'),
  logLevel: 'warn',
  build: { outDir: join(dist, 'dashboard'), emptyOutDir: true },
});

cpSync(join(root, 'migrations'), join(dist, 'migrations'), { recursive: true });
// PGlite's worker thread is plain JavaScript (decision 013): tsc does not emit it.
cpSync(join(root, 'collector/db/pglite-worker.js'), join(dist, 'collector/db/pglite-worker.js'));
for (const part of ['web', 'policies']) {
  mkdirSync(join(dist, 'testbed'), { recursive: true });
  cpSync(join(root, 'testbed', part), join(dist, 'testbed', part), { recursive: true });
}
console.log(`build: ${dist}`);
