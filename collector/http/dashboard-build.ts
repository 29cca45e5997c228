/**
 * Building the dashboard with Vite: a development tool (Vite is a dev dependency),
 * used by `silentdrop demo` from a clone and by the dashboard tests. The package ships
 * the dashboard built (`npm run build`), and the collector never imports this file.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DASHBOARD_DIST, DASHBOARD_ROOT, dashboardBuilt } from './dashboard.ts';

/** True when the built dashboard is missing or older than any of the dashboard's sources. */
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
