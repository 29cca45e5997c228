/** Probes: last check-in, clock offset, accounts and their state, outbox backlog, a full data folder. */
import { api } from '../api.ts';
import { chartPanel } from '../charts.ts';
import { escapeHtml, h } from '../dom.ts';
import { ago, ms, time } from '../format.ts';

export async function probes(root: HTMLElement): Promise<void> {
  const { probes: list } = await api.probes();
  const label = (p: { id: string; country: string; asn: number }) =>
    `${p.country} AS${p.asn} ${p.id.slice(0, 8)}`;
  chartPanel(root, {
    id: 'probes',
    title: 'Outbox backlog and dead letters per probe, as reported at check-in',
    filename: 'silentdrop-probes.csv',
    height: 280,
    data: {
      header: [
        'probe',
        'country',
        'asn',
        'last_checkin_at',
        'clock_offset_ms',
        'clock_rtt_ms',
        'outbox_backlog',
        'dead_letters',
        'storage_full_since',
        'accounts',
      ],
      rows: list.map((p) => [
        p.id,
        p.country,
        p.asn,
        p.last_checkin_at,
        p.clock_offset_ms,
        p.clock_rtt_ms,
        p.outbox_backlog,
        p.dead_letters,
        p.storage_full_since,
        p.accounts.length,
      ]),
    },
    option: {
      legend: { data: ['outbox backlog', 'dead letters'] },
      grid: { left: 56, right: 24, top: 40, bottom: 56 },
      xAxis: { type: 'category', data: list.map(label), axisLabel: { interval: 0 } },
      yAxis: { type: 'value', minInterval: 1 },
      tooltip: {
        trigger: 'item',
        formatter: (p: { seriesName: string; name: string; value: number }) =>
          `${escapeHtml(p.name)}<br>${escapeHtml(p.seriesName)}: ${escapeHtml(p.value)}`,
      },
      series: [
        {
          name: 'outbox backlog',
          type: 'bar',
          data: list.map((p) => p.outbox_backlog ?? 0),
          itemStyle: { color: '#2471a3' },
        },
        {
          name: 'dead letters',
          type: 'bar',
          data: list.map((p) => p.dead_letters ?? 0),
          itemStyle: { color: '#922b21' },
        },
      ],
    },
  });
  const rows = list.map((p) =>
    h(
      'tr',
      { 'data-probe': p.id },
      h('td', {}, label(p)),
      h('td', { title: p.last_checkin_at ?? '' }, ago(p.last_checkin_at)),
      h('td', {}, p.clock_offset_ms === null ? '—' : `${ms(p.clock_offset_ms)} (rtt ${ms(p.clock_rtt_ms)})`),
      h('td', {}, p.outbox_backlog ?? '—'),
      h('td', {}, p.dead_letters ?? '—'),
      h(
        'td',
        { class: p.storage_full_since ? 'state-storage-full' : '', title: p.storage_full_since ?? '' },
        p.storage_full_since ? `full since ${ago(p.storage_full_since)}` : 'ok',
      ),
      h(
        'td',
        {},
        h(
          'ul',
          { class: 'accounts' },
          p.accounts.map((a) =>
            h(
              'li',
              { class: `state-${a.state}` },
              `${a.platform} ${a.region}: ${a.state} (${a.adapter_name} ${a.adapter_version})`,
            ),
          ),
        ),
      ),
      h('td', {}, time(p.registered_at)),
    ),
  );
  root.append(
    h(
      'table',
      { class: 'probes', id: 'probe-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          [
            'Probe',
            'Last check-in',
            'Clock offset',
            'Outbox',
            'Dead letters',
            'Storage',
            'Accounts',
            'Registered',
          ].map((c) => h('th', { scope: 'col' }, c)),
        ),
      ),
      h('tbody', {}, rows),
    ),
  );
}
