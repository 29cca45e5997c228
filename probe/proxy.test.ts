import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { publicKeyToBase64 } from '../protocol/signing.ts';
import { CollectorClient, CollectorError } from './client.ts';
import {
  bypassesProxy,
  collectorFetch,
  describeRoute,
  parseProxyUrl,
  proxyRouteFor,
  redactProxyUrl,
} from './proxy.ts';
import { formatLocalStatus, type LocalProbeStatus } from './status.ts';
import { type FakeCollector, startFakeCollector } from './testing/fake-collector.ts';
import { type ForwardProxy, startConnectProxy, startSocks5Server } from './testing/forward-proxies.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** Packages loaded so far in this worker (undici and fetch-socks are CommonJS: they land in require's cache). */
const loaded = (pkg: string) =>
  Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes(`/node_modules/${pkg}/`));

/** Registers a new key; `fc` learns the one-time token first. */
const register = (client: CollectorClient, fc?: FakeCollector) => {
  const token = `tok-${randomUUID()}`;
  fc?.tokens.add(token);
  return client.register({
    protocol: 1,
    enrollment_token: token,
    public_key: publicKeyToBase64(generateKeyPairSync('ed25519').publicKey),
    country: 'US',
    asn: 64500,
    software_version: 'test',
  });
};

async function collector(): Promise<FakeCollector> {
  const fc = await startFakeCollector();
  cleanup.push(() => fc.close());
  return fc;
}
async function proxy(p: Promise<ForwardProxy>): Promise<ForwardProxy> {
  const px = await p;
  cleanup.push(() => px.close());
  return px;
}
function clientThrough(url: string, proxyUrl: string): CollectorClient {
  const f = collectorFetch([proxyRouteFor(url, proxyUrl, {})]);
  if (!f) throw new Error('expected a proxied fetch');
  cleanup.push(() => f.close());
  return new CollectorClient({ baseUrl: url, fetch: f.fetch, timeoutMs: 5000 });
}

describe('proxy for the collector traffic', () => {
  // First in the file: nothing has loaded the libraries yet in this worker.
  it('loads undici only once a request goes through a proxy, and fetch-socks only for SOCKS', async () => {
    expect([loaded('undici'), loaded('fetch-socks')]).toEqual([false, false]);
    const fc = await collector();
    expect(collectorFetch([proxyRouteFor(fc.url, undefined, {})])).toBeUndefined();
    expect(collectorFetch([proxyRouteFor(fc.url, 'direct', { ALL_PROXY: 'http://127.0.0.1:1' })])).toBe(
      undefined,
    );
    const http = await proxy(startConnectProxy());
    const client = clientThrough(fc.url, `http://${http.address}`);
    expect([loaded('undici'), loaded('fetch-socks')]).toEqual([false, false]); // not before a request
    await register(client, fc);
    expect(http.tunnels).toHaveLength(1);
    expect([loaded('undici'), loaded('fetch-socks')]).toEqual([true, false]);
    const socks = await proxy(startSocks5Server());
    await register(clientThrough(fc.url, `socks5://${socks.address}`), fc);
    expect(socks.tunnels).toHaveLength(1);
    expect(loaded('fetch-socks')).toBe(true);
  });

  it('sends a request for an address outside the proxy directly', async () => {
    const fc = await collector();
    const http = await proxy(startConnectProxy());
    const f = collectorFetch([proxyRouteFor('https://elsewhere.example', `http://${http.address}`, {})])!;
    cleanup.push(() => f.close());
    const client = new CollectorClient({ baseUrl: fc.url, fetch: f.fetch });
    await register(client, fc);
    expect(http.tunnels).toEqual([]);
    expect(fc.probes.size).toBe(1);
  });

  it('gives a network error that names the proxy, carries none of the SOCKS library’s objects, and hides the credentials', async () => {
    const fc = await collector();
    const socks = await proxy(startSocks5Server({ auth: 'user:right-pass' }));
    const client = clientThrough(fc.url, `socks5h://user:wrong-pass@${socks.address}`);
    const err = await register(client, fc).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CollectorError);
    const e = err as CollectorError;
    expect(e.kind).toBe('network');
    expect(e.retryable).toBe(true);
    expect(e.message).toMatch(
      new RegExp(
        `^POST /probe/v1/register: fetch failed through the proxy socks5h://\\*\\*\\*@${socks.address} \\(.+\\)$`,
      ),
    );
    expect(socks.refused).toBe(1);
    // The whole error, as a logger would print it (every enumerable property, every cause).
    const dump = (x: unknown, depth = 0): string =>
      x && typeof x === 'object' && depth < 6
        ? Object.entries({ ...x, message: (x as Error).message, cause: (x as Error).cause })
            .map(([k, v]) => `${k}=${dump(v, depth + 1)}`)
            .join(' ')
        : String(x);
    const text = dump(err);
    expect(text).toContain('through the proxy');
    expect(text).not.toContain('wrong-pass');
    expect(text).not.toMatch(/userId|password=/);
  });

  it('leaves a timeout a timeout (a proxy that never answers CONNECT)', async () => {
    const silent = createServer((socket) => {
      held.push(socket);
    });
    const held: Socket[] = [];
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanup.push(
      () =>
        new Promise<void>((r) => {
          for (const s of held) s.destroy();
          silent.close(() => r());
        }),
    );
    const f = collectorFetch([
      proxyRouteFor(
        'https://c.example.org',
        `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
        {},
      ),
    ])!;
    cleanup.push(() => f.close());
    const client = new CollectorClient({ baseUrl: 'https://c.example.org', fetch: f.fetch, timeoutMs: 300 });
    const err = (await register(client).catch((e: unknown) => e)) as CollectorError;
    expect([err.kind, err.message]).toEqual(['timeout', 'POST /probe/v1/register: no answer in 300 ms']);
    expect(held).toHaveLength(1);
  });
});

describe('proxy selection', () => {
  const route = (url: string, env: NodeJS.ProcessEnv, configured?: string) =>
    proxyRouteFor(url, configured, env);

  it('picks https_proxy, then HTTPS_PROXY, then all_proxy, ALL_PROXY for an https collector, empty meaning unset', () => {
    const url = 'https://c.example.org';
    expect(route(url, { HTTPS_PROXY: 'http://a:1', https_proxy: 'http://b:2' })).toMatchObject({
      proxy: 'http://b:2',
      source: 'https_proxy',
    });
    expect(route(url, { https_proxy: '', HTTPS_PROXY: 'http://a:1' }).source).toBe('HTTPS_PROXY');
    expect(route(url, { HTTP_PROXY: 'http://h:1', ALL_PROXY: 'socks5h://s:1080' })).toMatchObject({
      proxy: 'socks5h://s:1080',
      source: 'ALL_PROXY',
    });
    expect(route(url, { all_proxy: 'socks5://l:1', ALL_PROXY: 'socks5://u:1' }).source).toBe('all_proxy');
    expect(route(url, { HTTP_PROXY: 'http://h:1' }).source).toBe('none');
    expect(
      route('http://127.0.0.1:8080', { HTTP_PROXY: 'http://h:1', HTTPS_PROXY: 'http://s:1' }).proxy,
    ).toBe('http://h:1');
    expect(route(url, { HTTPS_PROXY: 'http://a:1' }, 'socks5://c:1').source).toBe('config');
  });

  it('reads NO_PROXY like curl and undici: names, subdomains, *., ports, IPv6, *', () => {
    const by = (url: string, no_proxy: string) => bypassesProxy(new URL(url), { no_proxy });
    expect(by('https://c.example.org', 'example.org')).toBe(true);
    expect(by('https://c.example.org', '.example.org')).toBe(true);
    expect(by('https://c.example.org', '*.example.org')).toBe(true);
    expect(by('https://example.org', '.example.org')).toBe(true);
    expect(by('https://badexample.org', 'example.org')).toBe(false);
    expect(by('https://c.example.org', 'other.net, c.example.org:443')).toBe(true);
    expect(by('https://c.example.org', 'c.example.org:8443')).toBe(false);
    expect(by('https://c.example.org:8443', 'c.example.org:8443')).toBe(true);
    expect(by('http://127.0.0.1:8080', 'localhost 127.0.0.1')).toBe(true);
    expect(by('http://[::1]:8080', '::1')).toBe(true);
    expect(by('http://[::1]:8080', '[::1]:8080')).toBe(true);
    expect(by('http://[::1]:8080', '[::1]:9090')).toBe(false);
    expect(by('https://C.Example.ORG', 'c.example.org')).toBe(true);
    expect(by('https://anything.example', '*')).toBe(true);
    expect(by('https://anything.example', '')).toBe(false);
    expect(bypassesProxy(new URL('https://c.example.org'), { NO_PROXY: 'example.org' })).toBe(true);
    expect(route('https://c.example.org', { HTTPS_PROXY: 'http://p:1', no_proxy: 'example.org' })).toEqual({
      collectorUrl: 'https://c.example.org',
      source: 'no_proxy',
    });
  });

  it('redacts credentials and fills the default port', () => {
    expect(redactProxyUrl('http://user:pass@proxy.example:3128')).toBe('http://***@proxy.example:3128');
    expect(redactProxyUrl('socks5h://user@127.0.0.1')).toBe('socks5h://***@127.0.0.1:1080');
    expect(redactProxyUrl('https://proxy.example')).toBe('https://proxy.example:443');
    expect(redactProxyUrl('http://[::1]:8080')).toBe('http://[::1]:8080');
    expect(redactProxyUrl('nonsense')).toBe('(unparsable proxy URL)');
    expect(describeRoute({ proxy: 'socks5://u:p@h:1', source: 'ALL_PROXY' })).toBe(
      'socks5://***@h:1 (from ALL_PROXY)',
    );
    expect(describeRoute({ proxy: 'http://h:1', source: 'config' })).toBe('http://h:1 (from the config)');
    expect(describeRoute({ source: 'none' })).toBe('direct');
    expect(parseProxyUrl('socks5h://u:p@h:1080')).toBeInstanceOf(URL);
  });

  it('never throws on a hostile proxy URL, and never shows its credentials', () => {
    // Marked so a chance match with a fixed word of a message ("pro" in "proxy") is not one.
    const secret = fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=%-]{3,20}$/).map((s) => `Qz${s}`);
    fc.assert(
      fc.property(
        fc.constantFrom('http', 'https', 'socks5', 'socks5h', 'socks4', 'ftp', 'HTTP', ''),
        secret,
        secret,
        fc.string({ maxLength: 40 }),
        fc.string({ maxLength: 20 }),
        (scheme, user, password, host, tail) => {
          const text = `${scheme}://${user}:${password}@${host}${tail}`;
          const parsed = parseProxyUrl(text);
          if (typeof parsed === 'string') {
            expect(parsed).not.toContain(password);
            return;
          }
          const shown = [redactProxyUrl(parsed), describeRoute({ proxy: parsed.href, source: 'config' })];
          for (const s of shown) {
            expect(s).not.toContain(`${parsed.username}:`);
            expect(s).not.toContain(`:${parsed.password}@`);
          }
        },
      ),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.webUrl(), (noProxy, url) => {
        expect(typeof bypassesProxy(new URL(url), { NO_PROXY: noProxy })).toBe('boolean');
      }),
      { numRuns: 300 },
    );
  });

  it('probe status shows one proxy line when every address goes the same way, else one per address', () => {
    const status = (proxies: { collector_url: string; route: string }[] | undefined): LocalProbeStatus => ({
      dataDir: '/d',
      backlog: 0,
      deadLetters: 0,
      unreadableRecords: 0,
      running: {
        version: 1,
        written_at: new Date().toISOString(),
        pid: 1,
        probe_id: 'p',
        collector_url: 'https://a.example',
        collector_urls: ['https://a.example', 'https://b.internal'],
        ...(proxies ? { proxies } : {}),
        last_checkin_at: null,
        last_checkin_error: null,
        clock: null,
        backlog: 0,
        dead_letters: 0,
        scheduled: 0,
        accounts: [],
      },
    });
    const same = 'socks5h://***@10.0.0.5:1080 (from the config)';
    expect(
      formatLocalStatus(
        status([
          { collector_url: 'https://a.example', route: same },
          { collector_url: 'https://b.internal', route: same },
        ]),
      ),
    ).toContain(`\nproxy:            ${same}\n`);
    expect(
      formatLocalStatus(
        status([
          { collector_url: 'https://a.example', route: 'http://p:3128 (from HTTPS_PROXY)' },
          { collector_url: 'https://b.internal', route: 'direct (NO_PROXY)' },
        ]),
      ),
    ).toContain(
      '\nproxy:\n  https://a.example: http://p:3128 (from HTTPS_PROXY)\n  https://b.internal: direct (NO_PROXY)\n',
    );
    // A status file written before proxies existed has no such line.
    expect(formatLocalStatus(status(undefined))).not.toContain('proxy:');
  });
});
