/**
 * Serves the built dashboard at `/` with @fastify/static: `dashboard/dist` from a clone
 * (sources run through tsx), `dist/dashboard` from the compiled package. Without a
 * build, `/` answers 503 with how to build it. Building is not done here (no Vite at run
 * time): see dashboard-build.ts. `/source` points at the source code (AGPL-3.0 §13).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { COLLECTOR_VERSION } from '../version.ts';

/** The repository root from the sources; `dist/` from the compiled code. */
const PARTS_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const COMPILED = !import.meta.url.endsWith('.ts');
export const DASHBOARD_ROOT = join(PARTS_ROOT, 'dashboard');
export const DASHBOARD_DIST = COMPILED ? join(PARTS_ROOT, 'dashboard') : join(DASHBOARD_ROOT, 'dist');

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
<p>Build it once with <code>npm run build</code> (writes <code>dist/dashboard</code>; in a clone,
<code>npm run build:dashboard</code> writes <code>dashboard/dist</code>), then restart the collector. The research API works without it: <a href="/docs">/docs</a>.</p></body></html>`;

/**
 * Where this collector's source code is: SILENTDROP_SOURCE_URL (an operator running a
 * modified collector must publish its source, AGPL-3.0 §13), else the package's
 * `repository` field.
 */
function sourceUrl(): string | undefined {
  const fromEnv = process.env.SILENTDROP_SOURCE_URL;
  if (fromEnv && /^https?:\/\//.test(fromEnv)) return fromEnv;
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        repository?: string | { url?: string };
      };
      if (pkg.name !== 'silentdrop') continue;
      const repo = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url;
      return repo && /^https?:\/\//.test(repo) ? repo : undefined;
    } catch {
      // not this layout
    }
  }
  return undefined;
}

const SOURCE_PAGE = `<!doctype html><html lang="en"><meta charset="utf-8"><title>silentdrop: source code</title>
<body><h1>silentdrop ${COLLECTOR_VERSION}</h1>
<p>This collector runs silentdrop, free software under the GNU Affero General Public License,
version 3 or later. You are entitled to its complete source code (section 13). Its operator
has not yet set <code>SILENTDROP_SOURCE_URL</code>, the address where this page would lead
you to it: ask the operator for it.</p></body></html>`;

export function dashboardBuilt(distDir = DASHBOARD_DIST): boolean {
  return existsSync(join(distDir, 'index.html'));
}

export async function dashboardPlugin(
  app: FastifyInstance,
  opts: { distDir?: string | undefined },
): Promise<void> {
  const distDir = opts.distDir ?? DASHBOARD_DIST;
  app.get('/source', { schema: { hide: true } }, async (_req, reply) => {
    const url = sourceUrl();
    if (url) return reply.redirect(url);
    return reply.type('text/html; charset=utf-8').send(SOURCE_PAGE);
  });
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
