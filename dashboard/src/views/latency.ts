/** Latency: delivery latency distributions of tests against controls (arrived canaries only). */
import { api } from '../api.ts';
import { chartPanel, dataTable } from '../charts.ts';
import { escapeHtml, h } from '../dom.ts';
import { ms } from '../format.ts';
import { apiFilters, type Route } from '../state.ts';

export async function latency(root: HTMLElement, route: Route): Promise<void> {
  const body = await api.latency(apiFilters(route.params));
  const labels = body.bins.map((b) =>
    b.hi_ms === null ? `≥ ${ms(b.lo_ms)}` : `${ms(b.lo_ms)} – ${ms(b.hi_ms)}`,
  );
  const share = (counts: number[], n: number) => counts.map((c) => (n ? c / n : 0));
  const rows = body.bins.map((b, i) => [b.lo_ms, b.hi_ms, ...body.series.map((s) => s.counts[i] ?? 0)]);
  const arrived = body.series.reduce((a, s) => a + s.n, 0);
  chartPanel(root, {
    id: 'latency',
    title: 'Delivery latency: share of arrived canaries per bin',
    filename: 'silentdrop-latency.csv',
    height: 360,
    data: { header: ['lo_ms', 'hi_ms', ...body.series.map((s) => s.kind)], rows: arrived ? rows : [] },
    option: {
      legend: { data: body.series.map((s) => s.kind) },
      grid: { left: 56, right: 24, top: 40, bottom: 64 },
      xAxis: { type: 'category', data: labels, axisLabel: { rotate: 30 } },
      yAxis: { type: 'value', axisLabel: { formatter: (v: number) => `${Math.round(v * 100)}%` } },
      tooltip: {
        trigger: 'item',
        formatter: (p: { seriesName: string; name: string; value: number; dataIndex: number }) => {
          const s = body.series.find((x) => x.kind === p.seriesName);
          return `${escapeHtml(p.seriesName)} ${escapeHtml(p.name)}<br>${escapeHtml(s?.counts[p.dataIndex] ?? 0)} of ${escapeHtml(s?.n ?? 0)}`;
        },
      },
      series: body.series.map((s) => ({
        name: s.kind,
        type: 'bar',
        data: share(s.counts, s.n),
        itemStyle: { color: s.kind === 'test' ? '#c0392b' : '#2471a3' },
      })),
    },
  });
  root.append(
    h('h2', {}, 'Quantiles'),
    h(
      'p',
      { class: 'note', id: 'latency-quantile-note' },
      body.quantile_error > 0
        ? `Read from the rollups' histogram: each quantile within ${Math.round(body.quantile_error * 1000) / 10} % of the exact value; the counts per bin are exact.`
        : 'Computed over every arrived canary (exact).',
    ),
    dataTable({
      header: ['kind', 'arrived', 'p50', 'p90', 'p95', 'p99'],
      rows: body.series.map((s) => [s.kind, s.n, ms(s.p50_ms), ms(s.p90_ms), ms(s.p95_ms), ms(s.p99_ms)]),
    }),
  );
}
