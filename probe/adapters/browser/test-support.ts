/**
 * Shared by the browser tests and bench/browser.ts: is there a Chromium, set up
 * accounts on a running testbed over its HTTP API, make fast-paced browser adapters,
 * and collect what they observe. Talks to the testbed only over HTTP.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { AccountConfig, Adapter, ObservedMessage } from '../types.ts';
import { resolveChromium } from './executable.ts';
import { createBrowserAdapter } from './index.ts';

export async function chromiumOrUndefined(): Promise<string | undefined> {
  return resolveChromium().catch(() => undefined);
}

export const FAST_PACING = { actionDelayMs: [0, 5], keyDelayMs: [0, 3], minSendIntervalMs: 0 };

export async function api(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; data: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, data: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Sign up `handle` (password `pw-<handle>`) and return its API token. */
export async function signUp(url: string, handle: string, region: string): Promise<string> {
  const password = `pw-${handle}`;
  const up = await api(url, 'POST', '/api/accounts', { handle, password, region });
  if (up.status !== 201) throw new Error(`sign-up of ${handle} failed: ${JSON.stringify(up.data)}`);
  const login = await api(url, 'POST', '/api/login', { handle, password });
  return String(login.data.token);
}

export async function createGroup(
  url: string,
  token: string,
  title: string,
  members: string[],
): Promise<string> {
  const r = await api(url, 'POST', '/api/conversations', { kind: 'group', title, members }, token);
  if (r.status >= 300) throw new Error(`group creation failed: ${JSON.stringify(r.data)}`);
  return String(r.data.id);
}

export function account(
  url: string,
  handle: string,
  region: string,
  opts: { password?: boolean; settings?: Record<string, unknown> } = {},
): AccountConfig {
  return {
    platform: 'browser',
    handle,
    region,
    credentials: opts.password === false ? {} : { password: `pw-${handle}` },
    settings: {
      recipe: 'testbed',
      url,
      pacing: FAST_PACING,
      sendTimeoutMs: 10_000,
      navigationTimeoutMs: 15_000,
      saveStateEveryMs: 0,
      refreshConversationsEveryMs: 0,
      ...opts.settings,
    },
  };
}

export function tempStateDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `sd-browser-${name}-`));
}

export const quietLogger: Logger = pino({ level: process.env.SILENTDROP_TEST_LOG ?? 'silent' });

/** An adapter plus everything it observed. */
export class Watched {
  readonly seen: ObservedMessage[] = [];
  readonly errors: Error[] = [];
  private waiters: (() => void)[] = [];
  readonly adapter: Adapter;

  constructor(
    readonly config: AccountConfig,
    readonly stateDir: string,
    logger: Logger = quietLogger,
  ) {
    this.adapter = createBrowserAdapter(config, { logger, stateDir });
  }

  async start(): Promise<this> {
    await this.adapter.connect();
    await this.adapter.observe(
      (m) => {
        this.seen.push(m);
        for (const w of this.waiters) w();
      },
      (e) => this.errors.push(e),
    );
    return this;
  }

  /** Resolve with the first observed message containing `needle`, or reject after `ms`. */
  waitFor(needle: string, ms = 10_000): Promise<ObservedMessage> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.seen.find((m) => m.text.includes(needle));
        if (!hit) return false;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== onChange);
        resolve(hit);
        return true;
      };
      const onChange = () => void check();
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== onChange);
        reject(new Error(`${this.config.handle} did not observe "${needle}" within ${ms} ms`));
      }, ms);
      if (!check()) this.waiters.push(onChange);
    });
  }
}

/** A nonce in the protocol's format (`sd` + 12 of [a-z0-9]). */
export function nonce(): string {
  return `sd${Math.random().toString(36).slice(2, 8)}${Date.now().toString(36).slice(-6)}`.padEnd(14, '0');
}
