#!/usr/bin/env node
// Entry point of the `silentdrop` command.
// - Installed package (no TypeScript sources beside this file): runs the compiled CLI in dist/.
// - Clone of the repository (cli/main.ts here, tsx installed as a dev dependency): runs the
//   sources through tsx's ESM hooks, so tests and `npx silentdrop` run what you edit without
//   a build. SILENTDROP_COMPILED=1 runs dist/ there too (after `npm run build`).
// See docs/decisions/015-build-and-package.md.
import { existsSync } from 'node:fs';

const sources = new URL('../cli/main.ts', import.meta.url);
if (process.env.SILENTDROP_COMPILED !== '1' && existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import('../dist/cli/main.js');
}
