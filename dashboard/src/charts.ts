/**
 * ECharts, imported module by module (core + the charts and components used), and the
 * chart panel every view uses: a title, the chart, a CSV download of the data behind
 * it, and the same data as a table (the text alternative to the picture).
 */
import { BarChart, HeatmapChart, LineChart } from 'echarts/charts';
import {
  AriaComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  TooltipComponent,
  VisualMapComponent,
} from 'echarts/components';
import * as echarts from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';
import { type Cell, downloadCsv } from './csv.ts';
import { h } from './dom.ts';

echarts.use([
  LineChart,
  BarChart,
  HeatmapChart,
  GridComponent,
  TooltipComponent,
  LegendComponent,
  VisualMapComponent,
  MarkLineComponent,
  AriaComponent,
  CanvasRenderer,
]);

export type ChartOption = echarts.EChartsCoreOption;

export interface PanelData {
  header: string[];
  rows: Cell[][];
}

const live = new Set<echarts.ECharts>();

export function disposeCharts(): void {
  for (const c of live) c.dispose();
  live.clear();
}

window.addEventListener('resize', () => {
  for (const c of live) c.resize();
});

export function dataTable(data: PanelData): HTMLTableElement {
  return h(
    'table',
    { class: 'data' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        data.header.map((c) => h('th', { scope: 'col' }, c)),
      ),
    ),
    h(
      'tbody',
      {},
      data.rows.map((r) =>
        h(
          'tr',
          {},
          r.map((c) => h('td', {}, c === null || c === undefined ? '' : String(c))),
        ),
      ),
    ),
  );
}

/** Appends a chart panel to `parent` and draws it. */
export function chartPanel(
  parent: Element,
  opts: {
    id: string;
    title: string;
    filename: string;
    data: PanelData;
    option: ChartOption;
    height?: number;
  },
): HTMLElement {
  const chartEl = h('div', { class: 'chart', role: 'img', 'aria-label': opts.title });
  chartEl.style.height = `${opts.height ?? 320}px`;
  const empty = opts.data.rows.length === 0;
  const panel = h(
    'section',
    { class: 'panel', 'data-chart': opts.id, 'data-rows': opts.data.rows.length },
    h(
      'div',
      { class: 'panel-head' },
      h('h2', {}, opts.title),
      h(
        'button',
        {
          type: 'button',
          class: 'csv',
          'data-csv': opts.id,
          disabled: empty,
          onclick: () => downloadCsv(opts.filename, opts.data.header, opts.data.rows),
        },
        'Download CSV',
      ),
    ),
    empty ? h('p', { class: 'empty' }, 'No outcomes match these filters.') : chartEl,
    h('details', {}, h('summary', {}, `Data (${opts.data.rows.length} rows)`), dataTable(opts.data)),
  );
  parent.append(panel);
  if (!empty) {
    const chart = echarts.init(chartEl, undefined, { renderer: 'canvas' });
    chart.setOption({ aria: { enabled: true }, animation: false, ...opts.option });
    live.add(chart);
  }
  return panel;
}
