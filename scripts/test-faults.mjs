#!/usr/bin/env node
// `npm run test:faults [-- --long] [vitest arguments]`: the fault suite (faults/README.md).
// `--long` is ours, not vitest's: it becomes SILENTDROP_FAULTS_LONG=1 (the 5-minute cut);
// everything else goes to `vitest run --config vitest.faults.config.ts`.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const env = { ...process.env };
if (args.includes('--long')) env.SILENTDROP_FAULTS_LONG = '1';
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const run = spawnSync(
  process.execPath,
  [vitest, 'run', '--config', 'vitest.faults.config.ts', ...args.filter((a) => a !== '--long')],
  { cwd: root, env, stdio: 'inherit' },
);
process.exit(run.status ?? 1);
