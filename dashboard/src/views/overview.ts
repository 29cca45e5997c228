/**
 * Overview: suppression (missing rate) over time, tests against controls, with 95%
 * Wilson bands and markers where findings start and end.
 */
import { type AggregationResponse, api } from '../api.ts';
import { chartPanel, type PanelData } from '../charts.ts';
import { escapeHtml, h } from '../dom.ts';
import { interval, pct, terms } from '../format.ts';
import { apiFilters, type Route, update, withParams } from '../state.ts';

const KIND_COLOUR = { test: '#c0392b', control: '#2471a3' } as const;

export async function overview(root: HTMLElement, route: Route): Promise<void> {
  const asked = route.params.get('grain');
  const filters = apiFilters(route.params);
  const byGrain = (g: string) => api.aggregation(withParams(filters, { group_by: `${g},kind` }));
  const points = (a: AggregationResponse) => new Set(a.rows.map((r) => r.keys[0])).size;
  const picked = asked === 'day' || asked === 'minute' || asked === 'hour' ? asked : undefined;
  let grain: 'minute' | 'hour' | 'day' = picked ?? 'day';
  // No grain asked: days first (one cheap query however long the data), and only for a span
  // of two weeks or less hours, or minutes when hours give one or two points.
  const [first, findings] = await Promise.all([
    byGrain(grain),
    api.findings(withParams(filters, { limit: '1000' })),
  ]);
  let agg = first;
  if (!picked && points(first) <= 14) {
    grain = 'hour';
    agg = await byGrain(grain);
    if (points(agg) < 3) {
      grain = 'minute';
      agg = await byGrain(grain);
    }
  }
  const rows = agg.rows.map((r) => ({
    t: r.keys[0] ?? '',
    kind: (r.keys[1] ?? '') as 'test' | 'control',
    ...r,
  }));
  const totals = (kind: 'test' | 'control') => {
    const mine = rows.filter((r) => r.kind === kind);
    const n = mine.reduce((a, r) => a + r.n, 0);
    const missing = mine.reduce((a, r) => a + r.missing, 0);
    return { n, rate: n ? missing / n : null };
  };
  const t = totals('test');
  const c = totals('control');
  root.append(
    h(
      'div',
      { class: 'toolbar' },
      h(
        'label',
        {},
        'Time grain ',
        h(
          'select',
          {
            name: 'grain',
            onchange: (ev: Event) => update({ grain: (ev.target as HTMLSelectElement).value }),
          },
          h('option', { value: 'minute', selected: grain === 'minute' }, 'minute'),
          h('option', { value: 'hour', selected: grain === 'hour' }, 'hour'),
          h('option', { value: 'day', selected: grain === 'day' }, 'day'),
        ),
      ),
      h('span', { class: 'stat', 'data-stat': 'test' }, `tests: ${pct(t.rate)} missing of ${t.n}`),
      h('span', { class: 'stat', 'data-stat': 'control' }, `controls: ${pct(c.rate)} missing of ${c.n}`),
      h('span', { class: 'stat' }, `findings: ${findings.findings.length}`),
    ),
  );

  const data: PanelData = {
    header: [grain, 'kind', 'n', 'missing', 'missing_rate', 'ci_low', 'ci_high', 'adverse_rate'],
    rows: rows.map((r) => [
      r.t,
      r.kind,
      r.n,
      r.missing,
      r.missing_rate,
      r.missing_interval?.low,
      r.missing_interval?.high,
      r.adverse_rate,
    ]),
  };
  const series = (['test', 'control'] as const).flatMap((kind) => {
    const mine = rows.filter((r) => r.kind === kind && r.n > 0);
    const colour = KIND_COLOUR[kind];
    return [
      {
        name: `${kind} band low`,
        type: 'line',
        stack: `${kind}-band`,
        data: mine.map((r) => [r.t, r.missing_interval?.low ?? 0]),
        lineStyle: { opacity: 0 },
        symbol: 'none',
        silent: true,
        tooltip: { show: false },
      },
      {
        name: `${kind} 95% interval`,
        type: 'line',
        stack: `${kind}-band`,
        data: mine.map((r) => [r.t, (r.missing_interval?.high ?? 0) - (r.missing_interval?.low ?? 0)]),
        lineStyle: { opacity: 0 },
        areaStyle: { color: colour, opacity: 0.15 },
        symbol: 'none',
        silent: true,
        tooltip: { show: false },
      },
      {
        name: kind === 'test' ? 'tests' : 'controls',
        type: 'line',
        data: mine.map((r) => [r.t, r.missing_rate, r.n, r.missing_interval?.low, r.missing_interval?.high]),
        itemStyle: { color: colour },
        lineStyle: { color: colour, width: 2 },
        ...(kind === 'test'
          ? {
              markLine: {
                symbol: 'none',
                label: { formatter: '{b}', fontSize: 10 },
                data: findings.findings
                  .filter((f) => f.verdict !== 'none' && f.verdict !== 'inconclusive')
                  .flatMap((f) => [
                    {
                      name: `onset: ${terms(f.term_set)}`,
                      xAxis: f.onset_at,
                      lineStyle: { color: '#7d3c98' },
                    },
                    {
                      name: `end: ${terms(f.term_set)}`,
                      xAxis: f.end_at,
                      lineStyle: { color: '#7d3c98', type: 'dotted' },
                    },
                  ]),
              },
            }
          : {}),
      },
    ];
  });
  chartPanel(root, {
    id: 'overview',
    title: 'Suppression over time: share of canaries missing at the recipient',
    filename: `silentdrop-overview-${grain}.csv`,
    data,
    height: 380,
    option: {
      legend: { data: ['tests', 'controls'] },
      grid: { left: 56, right: 24, top: 40, bottom: 40 },
      xAxis: { type: 'time' },
      yAxis: { type: 'value', min: 0, max: 1, axisLabel: { formatter: (v: number) => pct(v, 0) } },
      tooltip: {
        trigger: 'item',
        formatter: (p: { seriesName: string; value: [string, number, number, number, number] }) => {
          const [ts, rate, n, lo, hi] = p.value;
          return `${escapeHtml(p.seriesName)}<br>${escapeHtml(ts)}<br>${escapeHtml(pct(rate))} missing of ${escapeHtml(n)}<br>95%: ${escapeHtml(interval({ low: lo, high: hi }))}`;
        },
      },
      series,
    },
  });
}
