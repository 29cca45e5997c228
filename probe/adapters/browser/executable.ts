/**
 * Which Chromium to run: settings `executablePath` → env `SILENTDROP_CHROMIUM` →
 * a system Chromium/Chrome (`/usr/bin/chromium`, then `chromium`, `chromium-browser`,
 * `google-chrome` on PATH) → the optional `puppeteer` package's own download.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { AdapterError } from '../types.ts';

const SYSTEM_PATHS = ['/usr/bin/chromium'];
const PATH_NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string, pathEnv: string | undefined): string | undefined {
  for (const dir of (pathEnv ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (executable(candidate)) return candidate;
  }
  return undefined;
}

/** The optional `puppeteer` package's browser, if it is installed and has downloaded one. */
async function puppeteerOwn(): Promise<string | undefined> {
  try {
    const specifier = 'puppeteer';
    const mod = (await import(specifier)) as { default?: { executablePath(): string } };
    const path = mod.default?.executablePath();
    return path && executable(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

export interface ResolveOptions {
  configured?: string;
  env?: NodeJS.ProcessEnv;
  /** For tests: skip the system locations. */
  systemPaths?: readonly string[];
  /** For tests: skip the optional puppeteer package. */
  usePuppeteer?: boolean;
}

export async function resolveChromium(opts: ResolveOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const explicit = opts.configured ?? env.SILENTDROP_CHROMIUM;
  if (explicit) {
    if (executable(explicit)) return explicit;
    throw new AdapterError('adapter_error', `Chromium not executable at ${explicit} (executablePath)`);
  }
  for (const path of opts.systemPaths ?? SYSTEM_PATHS) if (executable(path)) return path;
  if (opts.systemPaths === undefined) {
    for (const name of PATH_NAMES) {
      const found = onPath(name, env.PATH);
      if (found) return found;
    }
  }
  const own = opts.usePuppeteer === false ? undefined : await puppeteerOwn();
  if (own) return own;
  throw new AdapterError(
    'adapter_error',
    'no Chromium found: set executablePath in the account settings or SILENTDROP_CHROMIUM, ' +
      'install chromium (apt-get install chromium), or let the optional puppeteer package download Chrome',
  );
}
