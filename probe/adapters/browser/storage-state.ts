/**
 * An account's web session kept on disk: its cookies and the localStorage of the
 * origins it used, in `<stateDir>/browser-session.json` (mode 0600, written atomically).
 * This file is what keeps a login across probe restarts and browser crashes; it holds
 * session tokens, so it never leaves the probe and is never logged.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, CookieData, Page } from 'puppeteer-core';
import { evalIn } from './inpage.ts';

export const STATE_FILE = 'browser-session.json';
const FORMAT = 1;

export interface StorageState {
  format: typeof FORMAT;
  savedAt: string;
  cookies: CookieData[];
  /** localStorage per origin, e.g. { "http://127.0.0.1:4000": { "testbed.token": "…" } }. */
  origins: Record<string, Record<string, string>>;
}

export function emptyState(): StorageState {
  return { format: FORMAT, savedAt: new Date(0).toISOString(), cookies: [], origins: {} };
}

export function readState(stateDir: string): StorageState {
  let text: string;
  try {
    text = readFileSync(join(stateDir, STATE_FILE), 'utf8');
  } catch {
    return emptyState();
  }
  const parsed = JSON.parse(text) as Partial<StorageState>;
  if (parsed.format !== FORMAT || !Array.isArray(parsed.cookies) || typeof parsed.origins !== 'object') {
    return emptyState();
  }
  return {
    format: FORMAT,
    savedAt: String(parsed.savedAt),
    cookies: parsed.cookies,
    origins: parsed.origins ?? {},
  };
}

export function writeState(stateDir: string, state: StorageState): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = join(stateDir, STATE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** Read cookies of the context and localStorage of each page's origin into a new state. */
export async function captureState(
  context: BrowserContext,
  pages: readonly Page[],
  previous: StorageState,
): Promise<StorageState> {
  const cookies = (await context.cookies()) as CookieData[];
  const origins = { ...previous.origins };
  for (const page of pages) {
    if (page.isClosed()) continue;
    const snap = await evalIn(page, () => {
      if (!/^https?:$/.test(location.protocol)) return undefined;
      const items: Record<string, string> = {};
      for (let i = 0; i < localStorage.length; i++) {
        const key = localStorage.key(i);
        if (key !== null) items[key] = localStorage.getItem(key) ?? '';
      }
      return { origin: location.origin, items };
    });
    if (snap) origins[snap.origin] = snap.items;
  }
  return { format: FORMAT, savedAt: new Date().toISOString(), cookies, origins };
}

/**
 * Put a stored state into a fresh context: cookies now, localStorage through a script
 * that runs before the page's own scripts on the first load only (`load` is called
 * with the page and must navigate it). Later pages share the context's storage.
 */
export async function restoreState(
  context: BrowserContext,
  page: Page,
  state: StorageState,
  load: () => Promise<unknown>,
): Promise<void> {
  if (state.cookies.length) await context.setCookie(...state.cookies);
  if (!Object.keys(state.origins).length) {
    await load();
    return;
  }
  const script = `(() => {
    const all = ${JSON.stringify(state.origins)};
    const items = all[location.origin];
    if (!items) return;
    for (const [k, v] of Object.entries(items)) localStorage.setItem(k, v);
  })()`;
  const { identifier } = await page.evaluateOnNewDocument(script);
  try {
    await load();
  } finally {
    await page.removeScriptToEvaluateOnNewDocument(identifier).catch(() => undefined);
  }
}

export const SEEN_FILE = 'browser-seen.json';

/** Ids of messages already reported (`<conversation>\u0000<id>`), so a restart does not report them again. */
export function readSeen(stateDir: string): string[] {
  try {
    const parsed = JSON.parse(readFileSync(join(stateDir, SEEN_FILE), 'utf8')) as unknown;
    return Array.isArray(parsed) ? parsed.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export function writeSeen(stateDir: string, keys: readonly string[]): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = join(stateDir, SEEN_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(keys), { mode: 0o600 });
  renameSync(tmp, file);
}
