import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CanaryAssignment, ProbeEvent } from '../protocol/index.ts';
import { AccountRunner } from './account.ts';
import { AdapterError, type AdapterFactory, type SendResult } from './adapters/types.ts';
import { ClockOffset } from './clock.ts';
import type { ProbeAccountConfig } from './config.ts';
import { QuarantineBook } from './quarantine.ts';
import { openProbeStore, type ProbeStore } from './store.ts';

const logger = pino({ level: 'silent' });
let dir: string;
let store: ProbeStore;
let uploaded: ProbeEvent[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd-account-'));
  uploaded = [];
  store = await openProbeStore(join(dir, 'outbox'), {
    logger,
    upload: async (events) => {
      uploaded.push(...events);
      return events.map((e, index) => ({ index, event_id: e.event_id, status: 'stored' as const }));
    },
  });
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

/** An adapter whose send answers come from a script, counting calls. */
function scripted(answers: (() => SendResult)[]): { factory: AdapterFactory; sends: () => number } {
  let n = 0;
  return {
    sends: () => n,
    factory: {
      name: 'example',
      version: '9.9.9',
      create: () => ({
        connect: async () => undefined,
        listConversations: async () => [],
        observe: async () => undefined,
        close: async () => undefined,
        send: async () => {
          const a = answers[Math.min(n, answers.length - 1)]!;
          n += 1;
          return a();
        },
      }),
    },
  };
}

const account: ProbeAccountConfig = {
  platform: 'example',
  handle: 'ann',
  region: 'US',
  credentials: {},
  settings: {},
  rateLimits: { perMinute: 2, perHour: 100, perDay: 100 },
  pacing: { minMs: 0, maxMs: 0 },
};

function canary(): CanaryAssignment {
  return {
    canary_id: randomUUID(),
    campaign_id: randomUUID(),
    platform: 'example',
    sender: 'ann',
    conversation: 'g1',
    text: 'x sdaaaaaaaaaaaa',
    nonce: 'sdaaaaaaaaaaaa',
    send_at: new Date().toISOString(),
    deadline_at: new Date(Date.now() + 10_000).toISOString(),
  };
}

async function runner(factory: AdapterFactory, quarantine?: QuarantineBook, config = account) {
  const r = new AccountRunner({
    config,
    factory,
    stateDir: join(dir, 'ann'),
    logger,
    outbox: store.outbox,
    ledger: store.ledger,
    quarantine: quarantine ?? (await QuarantineBook.open(dir)),
    quarantineMs: { bannedMs: 3600_000, rateLimitedMs: 600_000 },
    clock: new ClockOffset(),
  });
  await r.connect();
  return r;
}

async function send(r: AccountRunner, c: CanaryAssignment) {
  await store.ledger.assign(c);
  await r.enqueue(c);
  await store.outbox.flush(2000);
  return uploaded.find((e) => e.type !== 'received' && e.canary_id === c.canary_id);
}

describe('account sending', () => {
  it('quarantines an account that hit rate limiting and sends nothing more through it, across restarts', async () => {
    const s = scripted([
      () => {
        throw new AdapterError('rate_limited', 'slow down', { retryAfterMs: 5000 });
      },
    ]);
    const r = await runner(s.factory);
    expect(await send(r, canary())).toMatchObject({ type: 'failed', failure: 'rate_limited' });
    expect(r.state()).toBe('quarantined');
    expect(await send(r, canary())).toMatchObject({ type: 'failed', failure: 'rate_limited' });
    expect(s.sends()).toBe(1); // the second canary never reached the platform
    await r.stop();
    const reopened = await QuarantineBook.open(dir);
    expect(reopened.get(QuarantineBook.key('example', 'ann'))?.reason).toBe('rate_limited');
  });

  it('quarantines on a ban shown as a rejection', async () => {
    const s = scripted([
      () => ({ status: 'rejected', at: new Date(), failure: 'account_banned', notice: 'banned' }),
    ]);
    const r = await runner(s.factory);
    expect(await send(r, canary())).toMatchObject({ type: 'rejected', failure: 'account_banned' });
    expect(r.report().state).toBe('quarantined');
    await r.stop();
  });

  it('holds to the per-account rate limit and fails a canary it could only send after its deadline', async () => {
    const s = scripted([() => ({ status: 'sent', at: new Date() })]);
    const r = await runner(s.factory);
    expect(await send(r, canary())).toMatchObject({ type: 'sent' });
    expect(await send(r, canary())).toMatchObject({ type: 'sent' });
    // Third within a minute: the limit (2/min) would push it past the 10 s deadline.
    expect(await send(r, canary())).toMatchObject({
      type: 'failed',
      failure: 'deadline_missed',
      detail: 'the account rate limit would delay the send past its deadline',
    });
    expect(s.sends()).toBe(2);
    await r.stop();
  });

  it('reports how long its sends take lately, so the collector plans them that far apart', async () => {
    const s = scripted([() => ({ status: 'sent', at: new Date() })]);
    const slow: AdapterFactory = {
      ...s.factory,
      create: (...args) => ({
        ...s.factory.create(...args),
        send: async () => {
          await new Promise((res) => setTimeout(res, 150));
          return { status: 'sent', at: new Date() };
        },
      }),
    };
    const r = await runner(slow);
    expect(r.report().capacity?.send_ms).toBeUndefined(); // nothing sent yet
    expect(await send(r, canary())).toMatchObject({ type: 'sent' });
    const ms = r.report().capacity?.send_ms;
    expect(ms).toBeGreaterThanOrEqual(150);
    expect(ms).toBeLessThan(5_000);
    await r.stop();
  });

  it("fails a canary its send queue held past the deadline as the probe's miss, not the platform's", async () => {
    const slow: AdapterFactory = {
      ...scripted([() => ({ status: 'sent', at: new Date() })]).factory,
      create: (...args) => ({
        ...scripted([() => ({ status: 'sent', at: new Date() })]).factory.create(...args),
        send: async () => {
          await new Promise((res) => setTimeout(res, 400));
          return { status: 'sent', at: new Date() };
        },
      }),
    };
    const r = await runner(slow);
    const short = () => ({ ...canary(), deadline_at: new Date(Date.now() + 600).toISOString() });
    const cs = [short(), short(), short()];
    for (const c of cs) await store.ledger.assign(c);
    await Promise.all(cs.map((c) => r.enqueue(c)));
    await store.outbox.flush(2000);
    const out = cs.map((c) => uploaded.find((e) => e.type !== 'received' && e.canary_id === c.canary_id));
    expect(out[0]).toMatchObject({ type: 'sent' });
    // the second waited 400 ms of 600 and went; the third could not leave in time
    expect(out[2]).toMatchObject({ type: 'failed', failure: 'deadline_missed' });
    expect((out[2] as { detail?: string }).detail).toMatch(/send queue held it \d+ ms/);
    await r.stop();
  });

  it("sends nothing in quiet hours: a canary due inside them fails as the probe's own miss", async () => {
    const s = scripted([() => ({ status: 'sent', at: new Date() })]);
    // a quiet window around now, in UTC
    const m = new Date().getUTCHours() * 60 + new Date().getUTCMinutes();
    const quietHours = { startMin: (m + 1440 - 60) % 1440, endMin: (m + 60) % 1440, timeZone: 'UTC' };
    const r = await runner(s.factory, undefined, { ...account, quietHours });
    expect(r.report().state).toBe('quiet'); // the collector plans no sends for it
    expect(await send(r, canary())).toMatchObject({
      type: 'failed',
      failure: 'deadline_missed',
      detail: 'quiet hours would delay the send past its deadline',
    });
    expect(s.sends()).toBe(0);
    await r.stop();
  });
});
