/**
 * One Chromium per probe process, shared by every browser account and ref-counted:
 * the first lease launches it, the last release closes it. When Chromium dies without
 * being asked to (`disconnected`), its process group is killed (no orphan renderers),
 * a new one is launched and every lease holder is told, so it can reopen its pages.
 *
 * Accounts never share state here: each opens its own BrowserContext (see session.ts
 * and docs/decisions/004-browser-profiles.md). Chromium's own profile holds nothing
 * an account needs, so by default it is a fresh temporary folder per launch.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import puppeteer, { type Browser } from 'puppeteer-core';
import { AdapterError } from '../types.ts';
import { resolveChromium } from './executable.ts';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
  // The platforms are reached from this machine, whatever HTTPS_PROXY/ALL_PROXY say: on Linux
  // Chromium follows those variables, and a proxy elsewhere would move the vantage point being
  // measured (only the probe's traffic to the collector may use a proxy: probe/proxy.ts).
  '--no-proxy-server',
] as const;

export interface LaunchOptions {
  executablePath?: string;
  headless: boolean;
  userDataDir?: string;
}

/** What a lease holder (an account session) hears from the engine. */
export interface EngineListener {
  /** Chromium died; anything in flight has failed. */
  onCrash(): void;
  /** A new Chromium is up: reopen contexts and pages. */
  onRestart(browser: Browser): Promise<void>;
  /** Chromium could not be brought back. */
  onFatal(err: AdapterError): void;
}

export interface Lease {
  /** The current browser; waits while a restart is under way. */
  browser(): Promise<Browser>;
  release(): Promise<void>;
}

const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 10 * 60_000;

class Engine {
  private current?: Browser;
  private launching?: Promise<Browser>;
  private tempDir?: string;
  private readonly listeners = new Set<EngineListener>();
  private readonly restarts: number[] = [];
  private closing = false;

  constructor(
    private readonly opts: LaunchOptions,
    private readonly logger: Logger,
  ) {}

  get size(): number {
    return this.listeners.size;
  }

  browserNow(): Browser | undefined {
    return this.current;
  }

  add(listener: EngineListener): void {
    this.listeners.add(listener);
  }

  remove(listener: EngineListener): void {
    this.listeners.delete(listener);
  }

  browser(): Promise<Browser> {
    if (this.closing)
      return Promise.reject(new AdapterError('browser_crashed', 'the browser is shutting down'));
    if (this.current?.connected) return Promise.resolve(this.current);
    this.launching ??= this.launch().finally(() => {
      this.launching = undefined;
    });
    return this.launching;
  }

  private async launch(): Promise<Browser> {
    const executablePath = await resolveChromium({ configured: this.opts.executablePath });
    let userDataDir = this.opts.userDataDir;
    if (!userDataDir) {
      this.tempDir = mkdtempSync(join(tmpdir(), 'silentdrop-chromium-'));
      userDataDir = this.tempDir;
    }
    const browser = await puppeteer.launch({
      executablePath,
      headless: this.opts.headless,
      userDataDir,
      args: [...CHROMIUM_ARGS],
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
      defaultViewport: { width: 1100, height: 800 },
      protocolTimeout: 60_000,
    });
    const pid = browser.process()?.pid;
    if (pid) launchedPids.push(pid);
    this.logger.info({ pid, executablePath }, 'chromium launched');
    browser.once('disconnected', () => this.onDisconnected(browser, pid));
    this.current = browser;
    return browser;
  }

  private onDisconnected(browser: Browser, pid: number | undefined): void {
    if (this.current === browser) this.current = undefined;
    killGroup(pid);
    this.removeTempDir();
    if (this.closing) return;
    this.logger.warn({ pid }, 'chromium disconnected; restarting');
    for (const l of this.listeners) l.onCrash();
    void this.restart();
  }

  private async restart(): Promise<void> {
    const now = Date.now();
    while (this.restarts.length && (this.restarts[0] ?? 0) < now - RESTART_WINDOW_MS) this.restarts.shift();
    if (this.restarts.length >= MAX_RESTARTS) {
      this.fatal(new AdapterError('browser_crashed', `chromium crashed ${MAX_RESTARTS} times in 10 minutes`));
      return;
    }
    this.restarts.push(now);
    await sleep(Math.min(500 * 2 ** (this.restarts.length - 1), 8000));
    if (this.closing) return;
    let browser: Browser;
    try {
      browser = await this.browser();
    } catch (err) {
      this.logger.error({ err }, 'chromium could not be restarted');
      this.fatal(new AdapterError('browser_crashed', 'chromium could not be restarted', { cause: err }));
      return;
    }
    for (const l of [...this.listeners]) {
      await l.onRestart(browser).catch((err: unknown) => {
        l.onFatal(
          err instanceof AdapterError
            ? err
            : new AdapterError('browser_crashed', 'reopening pages after a restart failed', { cause: err }),
        );
      });
    }
  }

  private fatal(err: AdapterError): void {
    for (const l of this.listeners) l.onFatal(err);
  }

  async close(): Promise<void> {
    this.closing = true;
    const browser = this.current ?? (await this.launching?.catch(() => undefined));
    this.current = undefined;
    if (browser) {
      const pid = browser.process()?.pid;
      await Promise.race([browser.close().catch(() => undefined), sleep(5000, undefined, { ref: false })]);
      killGroup(pid);
    }
    this.removeTempDir();
  }

  private removeTempDir(): void {
    if (!this.tempDir) return;
    rmSync(this.tempDir, { recursive: true, force: true, maxRetries: 3 });
    this.tempDir = undefined;
  }
}

/** Kill Chromium's whole process group (puppeteer starts it detached, as group leader). */
function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Every Chromium pid launched in this process (tests check none outlives close). */
const launchedPids: number[] = [];
let engine: Engine | undefined;
let closingEngine: Promise<void> | undefined;

/**
 * Join the shared browser. The first caller's launch options win; a later caller with
 * different ones gets a warning, not a second Chromium.
 */
export async function acquireBrowser(
  opts: LaunchOptions,
  listener: EngineListener,
  logger: Logger,
): Promise<Lease> {
  await closingEngine;
  if (!engine) engine = new Engine(opts, logger.child({ component: 'chromium' }));
  else if (opts.executablePath !== undefined || opts.userDataDir !== undefined) {
    logger.warn(
      'the shared Chromium is already running; this account`s executablePath/userDataDir are ignored',
    );
  }
  const mine = engine;
  mine.add(listener);
  let released = false;
  return {
    browser: () => mine.browser(),
    release: async () => {
      if (released) return;
      released = true;
      mine.remove(listener);
      if (mine.size > 0 || engine !== mine) return;
      engine = undefined;
      closingEngine = mine.close().finally(() => {
        closingEngine = undefined;
      });
      await closingEngine;
    },
  };
}

/** For tests and the bench: the running Chromium and every pid launched by this engine. */
export function engineForTests(): { browser: Browser | undefined; launchedPids: readonly number[] } {
  return { browser: engine?.browserNow(), launchedPids };
}
