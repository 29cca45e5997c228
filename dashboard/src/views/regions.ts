/**
 * Regions: sender region × recipient region matrix of suppression (test canaries'
 * missing rate), direct and group conversations side by side.
 */
import { api } from '../api.ts';
import { chartPanel } from '../charts.ts';
import { escapeHtml } from '../dom.ts';
import { interval, pct } from '../format.ts';
import { apiFilters, type Route, withParams } from '../state.ts';

export async function regions(root: HTMLElement, route: Route): Promise<void> {
  const filters = apiFilters(route.params);
  filters.delete('conversation_kind');
  const kinds = ['direct', 'group'] as const;
  const results = await Promise.all(
    kinds.map((k) =>
      api.aggregation(
        withParams(filters, {
          group_by: 'sender_region,recipient_region',
          kind: 'test',
          conversation_kind: k,
        }),
      ),
    ),
  );
  const grid = document.createElement('div');
  grid.className = 'side-by-side';
  root.append(grid);
  const senders = [...new Set(results.flatMap((r) => r.rows.map((x) => x.keys[0] ?? '')))].sort();
  const recipients = [...new Set(results.flatMap((r) => r.rows.map((x) => x.keys[1] ?? '')))].sort();
  kinds.forEach((kind, i) => {
    const rows = results[i]?.rows ?? [];
    const cells = rows.map((r) => [
      recipients.indexOf(r.keys[1] ?? ''),
      senders.indexOf(r.keys[0] ?? ''),
      r.missing_rate,
      r.n,
      interval(r.missing_interval),
    ]);
    chartPanel(grid, {
      id: `regions-${kind}`,
      title: `${kind === 'direct' ? 'Direct chats' : 'Groups'}: test canaries missing, sender × recipient region`,
      filename: `silentdrop-regions-${kind}.csv`,
      height: 360,
      data: {
        header: ['sender_region', 'recipient_region', 'n', 'missing', 'missing_rate', 'ci_low', 'ci_high'],
        rows: rows.map((r) => [
          r.keys[0],
          r.keys[1],
          r.n,
          r.missing,
          r.missing_rate,
          r.missing_interval?.low,
          r.missing_interval?.high,
        ]),
      },
      option: {
        grid: { left: 64, right: 96, top: 24, bottom: 56 },
        xAxis: { type: 'category', data: recipients, name: 'recipient', nameLocation: 'middle', nameGap: 28 },
        yAxis: { type: 'category', data: senders, name: 'sender', nameLocation: 'middle', nameGap: 40 },
        visualMap: {
          min: 0,
          max: 1,
          // The missing rate; the other values are for labels and tooltips.
          dimension: 2,
          calculable: true,
          orient: 'vertical',
          right: 8,
          top: 'middle',
          inRange: { color: ['#eaf2f8', '#f5b041', '#922b21'] },
          formatter: (v: number) => pct(v, 0),
        },
        tooltip: {
          formatter: (p: { value: [number, number, number, number, string] }) => {
            const [x, y, rate, n, ci] = p.value;
            return `${escapeHtml(senders[y])} → ${escapeHtml(recipients[x])}<br>${escapeHtml(pct(rate))} missing of ${escapeHtml(n)}<br>95%: ${escapeHtml(ci)}`;
          },
        },
        series: [
          {
            type: 'heatmap',
            data: cells,
            label: {
              show: true,
              formatter: (p: { value: [number, number, number, number] }) =>
                `${pct(p.value[2], 0)}\nn=${p.value[3]}`,
            },
          },
        ],
      },
    });
  });
}
