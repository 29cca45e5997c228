/**
 * The shared Chromium reaches the platforms directly even when the probe's environment names a
 * proxy (HTTPS_PROXY & co. are for the collector traffic only; on Linux Chromium would follow
 * them). Skips (with a notice) when no Chromium is found, unless SILENTDROP_REQUIRE_ALL=1.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, expect, it } from 'vitest';
import { acquireBrowser } from './engine.ts';
import { chromiumOrUndefined, quietLogger } from './test-support.ts';

const chromium = await chromiumOrUndefined();
const required = process.env.SILENTDROP_REQUIRE_ALL === '1';
if (!chromium) process.stderr.write('\n[browser proxy test] SKIPPED: no Chromium found\n\n');

const VARS = [
  'HTTPS_PROXY',
  'https_proxy',
  'HTTP_PROXY',
  'http_proxy',
  'ALL_PROXY',
  'all_proxy',
  'NO_PROXY',
  'no_proxy',
];
const saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]));
afterAll(() => {
  for (const v of VARS) {
    if (saved[v] === undefined) delete process.env[v];
    else process.env[v] = saved[v];
  }
});

it.runIf(!!chromium || required)(
  'does not send the platforms’ traffic through the proxy in the environment',
  async () => {
    // A "proxy" that records every request and tunnel it is asked for.
    const seen: string[] = [];
    const proxy = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.end('through the proxy');
    });
    proxy.on('connect', (req, socket) => {
      seen.push(`CONNECT ${req.url}`);
      socket.destroy();
    });
    // A "platform" on loopback (Chromium never proxies loopback, so it loads either way).
    const platform = createServer((_req, res) => res.end('direct'));
    await Promise.all([proxy, platform].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    for (const v of VARS) delete process.env[v];
    Object.assign(process.env, {
      HTTPS_PROXY: proxyUrl,
      HTTP_PROXY: proxyUrl,
      ALL_PROXY: proxyUrl,
      http_proxy: proxyUrl,
    });
    const lease = await acquireBrowser(
      { headless: true, ...(chromium ? { executablePath: chromium } : {}) },
      { onCrash() {}, async onRestart() {}, onFatal() {} },
      quietLogger,
    );
    try {
      const page = await (await lease.browser()).newPage();
      // A name only a proxy could resolve: directly it fails, through the proxy it would load.
      const res = await page.goto('http://platform.invalid/', { timeout: 10_000 }).catch(() => null);
      expect(res === null || (await res.text()) !== 'through the proxy').toBe(true);
      // And a platform it can reach directly still loads.
      const direct = await page.goto(`http://127.0.0.1:${(platform.address() as AddressInfo).port}/`);
      expect(await direct?.text()).toBe('direct');
      await page.close();
      expect(seen).toEqual([]);
    } finally {
      await lease.release();
      await Promise.all([proxy, platform].map((s) => new Promise<void>((r) => s.close(() => r()))));
    }
  },
);
