/**
 * The browser adapter's settings (`account.settings`), read once and checked, with
 * human-like defaults. Tests pass fast pacing; production keeps the slow defaults so
 * accounts are not flagged for typing and clicking faster than a person.
 */
import { AdapterError } from '../types.ts';

/** An inclusive range in milliseconds; a delay is drawn uniformly from it. */
export type DelayRange = readonly [min: number, max: number];

export interface Pacing {
  /** Pause before each UI action (click, open a conversation, submit). */
  actionDelayMs: DelayRange;
  /** Pause between two keystrokes while typing. */
  keyDelayMs: DelayRange;
  /** Least time between two sends from this account. */
  minSendIntervalMs: number;
}

export interface BrowserSettings {
  /** Recipe name (key in recipes/index.ts), e.g. `testbed`. */
  recipe: string;
  /** Where the web client lives (recipes may have their own default). */
  url?: string;
  executablePath?: string;
  headless: boolean;
  /** Chromium's own profile folder; a fresh temporary one per launch when unset. */
  userDataDir?: string;
  pacing: Pacing;
  /** How long a send may take until the client shows "sent" or a notice. */
  sendTimeoutMs: number;
  /** How long page loads and login detection may take. */
  navigationTimeoutMs: number;
  /** Fill the login form from credentials during connect() when the session is gone. */
  autoLogin: boolean;
  /** How often the stored session (cookies, localStorage) is written while running. */
  saveStateEveryMs: number;
  /** How often the conversation list is re-read to watch conversations that appeared. */
  refreshConversationsEveryMs: number;
}

export const DEFAULT_PACING: Pacing = {
  actionDelayMs: [700, 2200],
  keyDelayMs: [60, 190],
  minSendIntervalMs: 4000,
};

function fail(message: string): never {
  throw new AdapterError('adapter_error', `browser adapter settings: ${message}`);
}

function range(value: unknown, name: string, fallback: DelayRange): DelayRange {
  if (value === undefined) return fallback;
  if (
    Array.isArray(value) &&
    value.length === 2 &&
    value.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0) &&
    value[0] <= value[1]
  ) {
    return [value[0], value[1]];
  }
  return fail(`${name} must be [min, max] milliseconds with 0 <= min <= max`);
}

function num(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  return fail(`${name} must be a number >= 0`);
}

function str(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && value.length > 0) return value;
  return fail(`${name} must be a non-empty string`);
}

function bool(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value === 'boolean') return value;
  return fail(`${name} must be true or false`);
}

export function readSettings(raw: Record<string, unknown>): BrowserSettings {
  const pacingRaw = (raw.pacing ?? {}) as Record<string, unknown>;
  if (typeof pacingRaw !== 'object' || pacingRaw === null) fail('pacing must be a mapping');
  return {
    recipe: str(raw.recipe, 'recipe') ?? fail('recipe is required (e.g. recipe: testbed)'),
    url: str(raw.url, 'url'),
    executablePath: str(raw.executablePath, 'executablePath'),
    headless: bool(raw.headless, 'headless', true),
    userDataDir: str(raw.userDataDir, 'userDataDir'),
    pacing: {
      actionDelayMs: range(pacingRaw.actionDelayMs, 'pacing.actionDelayMs', DEFAULT_PACING.actionDelayMs),
      keyDelayMs: range(pacingRaw.keyDelayMs, 'pacing.keyDelayMs', DEFAULT_PACING.keyDelayMs),
      minSendIntervalMs: num(
        pacingRaw.minSendIntervalMs,
        'pacing.minSendIntervalMs',
        DEFAULT_PACING.minSendIntervalMs,
      ),
    },
    sendTimeoutMs: num(raw.sendTimeoutMs, 'sendTimeoutMs', 30_000),
    navigationTimeoutMs: num(raw.navigationTimeoutMs, 'navigationTimeoutMs', 30_000),
    autoLogin: bool(raw.autoLogin, 'autoLogin', true),
    saveStateEveryMs: num(raw.saveStateEveryMs, 'saveStateEveryMs', 60_000),
    refreshConversationsEveryMs: num(raw.refreshConversationsEveryMs, 'refreshConversationsEveryMs', 60_000),
  };
}
