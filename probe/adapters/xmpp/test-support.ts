/** Helpers for the xmpp adapter tests: an adapter per account that records what it observes. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import type { Adapter, ObservedMessage } from '../types.ts';
import factory from './index.ts';

export interface ServerInfo {
  host: string;
  port: number;
  domain: string;
  jids: readonly string[];
  rooms: readonly { jid: string; members: readonly string[] }[];
}

/** A canary-like nonce: `sd` + 12 of [a-z0-9]. */
export function nonce(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return `sd${[...randomBytes(12)].map((b) => alphabet[b % alphabet.length]).join('')}`;
}

export class Watched {
  readonly seen: ObservedMessage[] = [];
  readonly errors: Error[] = [];
  readonly adapter: Adapter;
  private readonly stateDir = mkdtempSync(join(tmpdir(), 'sd-xmpp-state-'));

  constructor(
    readonly jid: string,
    server: ServerInfo,
    password: string,
    extra: Record<string, unknown> = {},
  ) {
    const level = process.env.SILENTDROP_TEST_LOG === '1' ? 'debug' : 'silent';
    this.adapter = factory.create(
      {
        platform: 'xmpp',
        handle: jid,
        region: 'XX',
        credentials: { password },
        settings: {
          host: server.host,
          port: server.port,
          domain: server.domain,
          tls: false,
          accounts: [...server.jids],
          groups: server.rooms.map((r) => ({ room: r.jid, members: [...r.members] })),
          reconnect: { min_ms: 100, max_ms: 1000, give_up_ms: 20_000 },
          send_timeout_ms: 8000,
          ...extra,
        },
      },
      {
        logger: pino({ level, base: { jid } }, pino.destination(2)),
        stateDir: this.stateDir,
      },
    );
  }

  async start(): Promise<this> {
    await this.adapter.connect();
    await this.adapter.observe(
      (m) => this.seen.push(m),
      (e) => this.errors.push(e),
    );
    return this;
  }

  /** Closes the adapter and removes its state folder. */
  async stop(): Promise<void> {
    await this.adapter.close();
    rmSync(this.stateDir, { recursive: true, force: true });
  }

  has(text: string): ObservedMessage | undefined {
    return this.seen.find((m) => m.text.includes(text));
  }

  async waitFor(text: string, timeoutMs = 5000): Promise<ObservedMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.has(text);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`${this.jid} did not receive a message containing ${text}`);
      await sleep(5);
    }
  }
}
