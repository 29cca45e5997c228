/**
 * Serves the built dashboard (dashboard/dist) at `/` with @fastify/static. Without a
 * build, `/` answers 503 with how to build it. `buildDashboard()` runs Vite's build()
 * (Vite is a dev dependency: imported only when called).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DASHBOARD_ROOT = join(REPO_ROOT, 'dashboard');
export const DASHBOARD_DIST = join(DASHBOARD_ROOT, 'dist');

/** The dashboard talks only to this origin; terms are text, never markup. */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'none'",
].join('; ');

const NOT_BUILT = `<!doctype html><html lang="en"><meta charset="utf-8"><title>silentdrop: dashboard not built</title>
<body><h1>The dashboard is not built</h1>
<p>Build it once with <code>npm run build:dashboard</code> (writes <code>dashboard/dist</code>), then restart
the collector. The research API works without it: <a href="/docs">/docs</a>.</p></body></html>`;

export function dashboardBuilt(distDir = DASHBOARD_DIST): boolean {
  return existsSync(join(distDir, 'index.html'));
}

export async function dashboardPlugin(
  app: FastifyInstance,
  opts: { distDir?: string | undefined },
): Promise<void> {
  const distDir = opts.distDir ?? DASHBOARD_DIST;
  if (!dashboardBuilt(distDir)) {
    app.get('/', { schema: { hide: true } }, async (_req, reply) =>
      reply.status(503).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(NOT_BUILT),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: distDir,
    prefix: '/',
    decorateReply: false,
    index: ['index.html'],
    schemaHide: true,
    setHeaders(res: FastifyReply, path: string) {
      if (path.endsWith('.html')) {
        res.header('content-security-policy', DASHBOARD_CSP);
        res.header('cache-control', 'no-cache');
      } else if (path.includes(`${join('dist', 'assets')}`)) {
        res.header('cache-control', 'public, max-age=31536000, immutable');
      }
      res.header('x-content-type-options', 'nosniff');
      res.header('referrer-policy', 'no-referrer');
    },
  });
}

/** True when dashboard/dist is missing or older than any of the dashboard's sources. */
export function dashboardStale(distDir = DASHBOARD_DIST): boolean {
  if (!dashboardBuilt(distDir)) return true;
  const builtAt = statSync(join(distDir, 'index.html')).mtimeMs;
  const sources = [
    join(DASHBOARD_ROOT, 'index.html'),
    join(DASHBOARD_ROOT, 'vite.config.ts'),
    ...readdirSync(join(DASHBOARD_ROOT, 'src'), { recursive: true, encoding: 'utf8' }).map((f) =>
      join(DASHBOARD_ROOT, 'src', f),
    ),
  ];
  return sources.some((f) => existsSync(f) && statSync(f).mtimeMs > builtAt);
}

/** Builds dashboard/ into `outDir` (default dashboard/dist) with Vite; returns the folder. */
export async function buildDashboard(options: { outDir?: string; quiet?: boolean } = {}): Promise<string> {
  const { build } = await import('vite');
  const outDir = options.outDir ?? DASHBOARD_DIST;
  await build({
    configFile: join(DASHBOARD_ROOT, 'vite.config.ts'),
    logLevel: options.quiet === false ? 'info' : 'warn',
    build: { outDir, emptyOutDir: true },
  });
  return outDir;
}
