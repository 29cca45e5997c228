#!/usr/bin/env node
// Entry point for `npx silentdrop`: loads the TypeScript CLI through tsx's ESM hooks,
// so the repository runs without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
