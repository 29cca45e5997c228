/**
 * The probe reaches the real collector (PGlite) through an HTTP CONNECT proxy and through a
 * SOCKS5 server, chosen by the config's `proxy:` field or by HTTPS_PROXY/ALL_PROXY/NO_PROXY;
 * a proxy that is down is retried with backoff and named (without its credentials).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../collector/app.ts';
import { openTestDatabase } from '../collector/test-support/db.ts';
import { TEST_ADMIN_TOKEN, TEST_HASH_KEY } from '../collector/test-support/probe.ts';
import { type ProbeHandle, startProbe } from '../probe/agent.ts';
import { parseConfig } from '../probe/config.ts';
import { formatLocalStatus, readLocalStatus } from '../probe/status.ts';
import { type ForwardProxy, startConnectProxy, startSocks5Server } from '../probe/testing/forward-proxies.ts';

let database: Awaited<ReturnType<typeof openTestDatabase>>;
let app: Awaited<ReturnType<typeof buildApp>>;
let collectorPort: number;
let dir: string;
let probe: ProbeHandle | undefined;
let proxies: ForwardProxy[];
let lines: { msg: string; [k: string]: unknown }[];
let logText: string;

const logger = () =>
  pino(
    { level: 'debug' },
    {
      write: (s: string) => {
        logText += s;
        lines.push(JSON.parse(s) as { msg: string });
      },
    },
  );

beforeAll(async () => {
  database = await openTestDatabase({ name: 'pglite' });
  app = await buildApp({
    db: database.db,
    config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
  });
  collectorPort = Number(new URL(await app.listen({ host: '127.0.0.1', port: 0 })).port);
}, 60_000);
afterAll(async () => {
  await app?.close();
  await database?.cleanup();
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd-proxy-'));
  proxies = [];
  lines = [];
  logText = '';
});
afterEach(async () => {
  await probe?.stop();
  probe = undefined;
  for (const p of proxies) await p.close();
  await rm(dir, { recursive: true, force: true });
});

async function enrollmentToken(): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/admin/v1/enrollment-tokens',
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    payload: {},
  });
  return (res.json() as { token: string }).token;
}

/** The collector's address by IP, or by name (`localhost`: only a SOCKS server that resolves names finds it). */
const collector = (host = '127.0.0.1') => `http://${host}:${collectorPort}`;

async function config(opts: { url?: string; proxy?: string; env?: NodeJS.ProcessEnv }) {
  // An account belongs to one probe in the collector: each test's probe has its own.
  const handle = `ann-${randomUUID().slice(0, 8)}`;
  return parseConfig(
    `
collector_url: ${opts.url ?? collector()}
enrollment_token: ${await enrollmentToken()}
data_dir: ${dir}
country: US
asn: 64500
checkin_cron: "0 0 1 1 *"
${opts.proxy ? `proxy: "${opts.proxy}"` : ''}
accounts:
  - platform: example
    handle: ${handle}
    region: US
    credentials: { password: pw-ann }
    settings:
      network: net-${randomUUID()}
      conversations: [{ id: g1, kind: group, members: [${handle}, li] }]
`,
    { env: opts.env ?? {} },
  );
}

async function up(p: Promise<ForwardProxy>): Promise<ForwardProxy> {
  const proxy = await p;
  proxies.push(proxy);
  return proxy;
}

/** A port where nothing listens (we had it and closed it). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function registered(probeId: string): Promise<boolean> {
  const res = await app.inject({
    method: 'GET',
    url: '/admin/v1/probes',
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
  });
  return res.body.includes(probeId);
}

describe('probe ↔ collector through a proxy', () => {
  it('registers and checks in through an HTTP CONNECT proxy that wants credentials, which never show', async () => {
    const proxy = await up(startConnectProxy({ auth: 'probe-user:s3cret-Pw' }));
    probe = await startProbe(await config({ proxy: `http://probe-user:s3cret-Pw@${proxy.address}` }), {
      logger: logger(),
    });
    expect(await registered(probe.probeId)).toBe(true);
    expect(probe.status().lastCheckinError).toBeUndefined();
    expect(probe.status().lastCheckinAt).toBeDefined();
    // Every request went through a tunnel to the collector, with the Basic credentials.
    expect(proxy.tunnels.length).toBeGreaterThanOrEqual(1);
    const basic = `Basic ${Buffer.from('probe-user:s3cret-Pw').toString('base64')}`;
    for (const t of proxy.tunnels) expect(t).toEqual({ target: `127.0.0.1:${collectorPort}`, detail: basic });
    expect(proxy.refused).toBe(0);
    // The status shows the proxy, redacted.
    const status = await readLocalStatus(dir);
    expect(formatLocalStatus(status)).toContain(
      `proxy:            http://***@${proxy.address} (from the config)`,
    );
    const statusFile = await readFile(join(dir, 'status.json'), 'utf8');
    const identity = await readFile(join(dir, 'identity.json'), 'utf8');
    for (const text of [logText, statusFile, identity, formatLocalStatus(status)]) {
      expect(text).not.toContain('s3cret');
      expect(text).not.toContain('probe-user');
    }
    expect(lines.some((l) => l.msg === 'collector traffic goes through a proxy')).toBe(true);
  });

  it('says the proxy refused its credentials, naming the proxy but not the credentials', async () => {
    const proxy = await up(startConnectProxy({ auth: 'probe-user:right' }));
    const start = startProbe(await config({ proxy: `http://probe-user:wrong-Pw@${proxy.address}` }), {
      logger: logger(),
      retry: { baseMs: 30, maxMs: 60 },
    });
    const end = Date.now() + 10_000;
    while (lines.filter((l) => l.msg.startsWith('cannot register')).length < 2 && Date.now() < end)
      await new Promise((r) => setTimeout(r, 20));
    const retries = lines.filter((l) => l.msg === 'cannot register with the collector yet; trying again');
    expect(retries.length).toBeGreaterThanOrEqual(2);
    expect(retries[0]!.err).toContain(`through the proxy http://***@${proxy.address}`);
    expect(retries[0]!.err).toContain('407');
    expect(logText).not.toContain('wrong-Pw');
    expect(logText).not.toContain('probe-user');
    // The proxy now takes the probe's credentials (same port): the probe that kept trying gets through.
    await proxy.close();
    proxies = [await up(startConnectProxy({ auth: 'probe-user:wrong-Pw', port: proxy.port }))];
    probe = await start;
    expect(await registered(probe.probeId)).toBe(true);
  });

  it('registers and checks in through a SOCKS5 server with credentials, handing it the collector’s name', async () => {
    const socks = await up(startSocks5Server({ auth: 'sock-user:s0cks-Pw' }));
    probe = await startProbe(
      await config({ url: collector('localhost'), proxy: `socks5h://sock-user:s0cks-Pw@${socks.address}` }),
      { logger: logger() },
    );
    expect(await registered(probe.probeId)).toBe(true);
    expect(probe.status().lastCheckinError).toBeUndefined();
    expect(probe.status().lastCheckinAt).toBeDefined();
    expect(socks.tunnels.length).toBeGreaterThanOrEqual(1);
    // The name, not an address: the probe did not look the collector up on its own network.
    for (const t of socks.tunnels)
      expect(t).toEqual({ target: `localhost:${collectorPort}`, detail: 'domain' });
    expect(socks.refused).toBe(0);
    const text = formatLocalStatus(await readLocalStatus(dir));
    expect(text).toContain(`proxy:            socks5h://***@${socks.address} (from the config)`);
    for (const t of [logText, text, await readFile(join(dir, 'status.json'), 'utf8')]) {
      expect(t).not.toContain('s0cks-Pw');
      expect(t).not.toContain('sock-user');
    }
  });

  it('uses ALL_PROXY=socks5://… when the config names no proxy', async () => {
    const socks = await up(startSocks5Server());
    probe = await startProbe(await config({ env: { ALL_PROXY: `socks5://${socks.address}` } }), {
      logger: logger(),
    });
    expect(await registered(probe.probeId)).toBe(true);
    expect(socks.tunnels.map((t) => t.target)).toContain(`127.0.0.1:${collectorPort}`);
    expect(formatLocalStatus(await readLocalStatus(dir))).toContain(
      `proxy:            socks5://${socks.address} (from ALL_PROXY)`,
    );
  });

  it('goes directly when NO_PROXY names the collector host, though HTTP_PROXY is set', async () => {
    const proxy = await up(startConnectProxy());
    probe = await startProbe(
      await config({ env: { HTTP_PROXY: `http://${proxy.address}`, NO_PROXY: 'example.org, 127.0.0.1' } }),
      { logger: logger() },
    );
    expect(await registered(probe.probeId)).toBe(true);
    expect(probe.status().lastCheckinError).toBeUndefined();
    expect(probe.status().lastCheckinAt).toBeDefined();
    expect(proxy.tunnels).toEqual([]);
    expect(formatLocalStatus(await readLocalStatus(dir))).toContain('proxy:            direct (NO_PROXY)');
  });

  it('takes the config’s proxy over the environment’s', async () => {
    const fromEnv = await up(startConnectProxy());
    const fromConfig = await up(startSocks5Server());
    probe = await startProbe(
      await config({
        proxy: `socks5://${fromConfig.address}`,
        env: { HTTP_PROXY: `http://${fromEnv.address}`, ALL_PROXY: `http://${fromEnv.address}` },
      }),
      { logger: logger() },
    );
    expect(await registered(probe.probeId)).toBe(true);
    expect(fromConfig.tunnels.length).toBeGreaterThanOrEqual(1);
    expect(fromEnv.tunnels).toEqual([]);
  });

  it('keeps trying while the proxy is down, names it in the error, and gets through once it is up', async () => {
    const port = await freePort();
    const start = startProbe(await config({ proxy: `socks5h://user:pw-hidden@127.0.0.1:${port}` }), {
      logger: logger(),
      retry: { baseMs: 30, maxMs: 80 },
    });
    let failed = false;
    void start.catch(() => {
      failed = true;
    });
    const end = Date.now() + 10_000;
    while (lines.filter((l) => l.msg.startsWith('cannot register')).length < 3 && Date.now() < end)
      await new Promise((r) => setTimeout(r, 20));
    expect(failed).toBe(false);
    const retries = lines.filter((l) => l.msg === 'cannot register with the collector yet; trying again');
    expect(retries.length).toBeGreaterThanOrEqual(3);
    expect(retries[0]!.err).toMatch(
      new RegExp(
        `fetch failed through the proxy socks5h://\\*\\*\\*@127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED`,
      ),
    );
    const socks = await up(startSocks5Server({ auth: 'user:pw-hidden', port }));
    probe = await start;
    expect(await registered(probe.probeId)).toBe(true);
    expect(probe.status().lastCheckinError).toBeUndefined();
    expect(probe.status().lastCheckinAt).toBeDefined();

    // Down again: the check-in fails, is retried, and the status names the proxy.
    await socks.close();
    expect(await probe.checkin()).toBeUndefined();
    const err = (await readLocalStatus(dir)).running?.last_checkin_error ?? '';
    expect(err).toContain(`through the proxy socks5h://***@127.0.0.1:${port}`);
    expect(lines.some((l) => l.msg === 'check-in failed; trying again with backoff')).toBe(true);
    expect(logText).not.toContain('pw-hidden');
    expect(await readFile(join(dir, 'status.json'), 'utf8')).not.toContain('pw-hidden');
  });
});
