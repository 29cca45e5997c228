import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { dashboardPlugin } from './dashboard.ts';

describe('the dashboard plugin', () => {
  const built = mkdtempSync(join(tmpdir(), 'sd-dashboard-built-'));
  writeFileSync(
    join(built, 'index.html'),
    '<!doctype html><footer><a href="/source">source code</a></footer>',
  );
  const empty = mkdtempSync(join(tmpdir(), 'sd-dashboard-empty-'));
  const saved = process.env.SILENTDROP_SOURCE_URL;
  afterEach(() => {
    if (saved === undefined) delete process.env.SILENTDROP_SOURCE_URL;
    else process.env.SILENTDROP_SOURCE_URL = saved;
  });
  afterAll(() => {
    rmSync(built, { recursive: true, force: true });
    rmSync(empty, { recursive: true, force: true });
  });

  async function app(distDir: string) {
    const a = Fastify();
    await a.register(dashboardPlugin, { distDir });
    return a;
  }

  it('serves the built files with its CSP, and says how to build when there are none', async () => {
    const a = await app(built);
    const page = await a.inject({ url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.body).toContain('href="/source"');
    const b = await app(empty);
    const missing = await b.inject({ url: '/' });
    expect(missing.statusCode).toBe(503);
    expect(missing.body).toContain('npm run build');
  });

  it('leads /source to SILENTDROP_SOURCE_URL, and without one says whom to ask (AGPL-3.0 section 13)', async () => {
    process.env.SILENTDROP_SOURCE_URL = 'https://code.example.org/silentdrop';
    const a = await app(built);
    const redirect = await a.inject({ url: '/source' });
    expect(redirect.statusCode).toBe(302);
    expect(redirect.headers.location).toBe('https://code.example.org/silentdrop');

    process.env.SILENTDROP_SOURCE_URL = 'javascript:alert(1)';
    const page = await (await app(built)).inject({ url: '/source' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body).toContain('GNU Affero General Public License');
    expect(page.body).toContain('SILENTDROP_SOURCE_URL');
  });
});
