/**
 * Builds the dashboard (root: this folder) into dashboard/dist, which the collector
 * serves at `/` (collector/http/dashboard.ts). `npm run build:dashboard`, or
 * buildDashboard() from code. In `vite dev`, /api is proxied to a local collector.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    // ECharts is imported module by module (src/charts.ts); one chunk stays well under this.
    chunkSizeWarningLimit: 900,
  },
  server: { proxy: { '/api': process.env.SILENTDROP_COLLECTOR ?? 'http://127.0.0.1:8080' } },
});
