/**
 * Terms: every term set with verdict, rates, interval, n and onset; sortable and
 * searchable (state in the URL); a click opens its timeline and raw outcomes.
 */
import type { FindingRecord, OutcomeRecord, TermSetSummary } from '../../../protocol/research.ts';
import { api } from '../api.ts';
import { chartPanel, dataTable } from '../charts.ts';
import { escapeHtml, h } from '../dom.ts';
import { interval, ms, pct, terms, time } from '../format.ts';
import { apiFilters, type Route, update, withParams } from '../state.ts';

type Column = {
  key: string;
  label: string;
  value: (t: TermSetSummary) => string | number | null;
  show: (t: TermSetSummary) => string;
};

const COLUMNS: Column[] = [
  { key: 'terms', label: 'Term set', value: (t) => terms(t.term_set), show: (t) => terms(t.term_set) },
  { key: 'verdict', label: 'Verdict', value: (t) => t.verdict, show: (t) => t.verdict ?? '—' },
  {
    key: 'test_rate',
    label: 'Test missing',
    value: (t) => t.test.missing_rate,
    show: (t) => pct(t.test.missing_rate),
  },
  {
    key: 'interval',
    label: '95% interval',
    value: (t) => t.test.missing_interval?.low ?? null,
    show: (t) => interval(t.test.missing_interval),
  },
  { key: 'test_n', label: 'n (tests)', value: (t) => t.test.n, show: (t) => String(t.test.n) },
  {
    key: 'control_rate',
    label: 'Control missing',
    value: (t) => t.control.missing_rate,
    show: (t) => pct(t.control.missing_rate),
  },
  { key: 'control_n', label: 'n (controls)', value: (t) => t.control.n, show: (t) => String(t.control.n) },
  {
    key: 'adverse',
    label: 'Test adverse',
    value: (t) => t.test.adverse_rate,
    show: (t) => pct(t.test.adverse_rate),
  },
  { key: 'onset', label: 'Onset', value: (t) => t.onset_at, show: (t) => time(t.onset_at) },
];

function compare(a: string | number | null, b: string | number | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return a < b ? -1 : 1;
}

const HOUR_MS = 3_600_000;

/**
 * The filter bar's time range (minutes) widened to the whole UTC hours it touches: the terms
 * view counts by the hour, as its timeline charts, and the collector then answers from hour rows
 * alone (decision 037). `hours`: the range counted, when it differs from the one chosen.
 */
function wholeHoursOf(filters: URLSearchParams): {
  filters: URLSearchParams;
  hours: { from: string | null; to: string | null } | null;
} {
  const out = new URLSearchParams(filters);
  let changed = false;
  const snap = (key: 'from' | 'to', round: (x: number) => number) => {
    const v = filters.get(key);
    const t = v === null ? Number.NaN : Date.parse(v);
    if (Number.isNaN(t)) return v;
    const hour = round(t / HOUR_MS) * HOUR_MS;
    // an instant already on the hour, however written, is not a change
    if (hour !== t) changed = true;
    const iso = new Date(hour).toISOString();
    out.set(key, iso);
    return iso;
  };
  const from = snap('from', Math.floor);
  const to = snap('to', Math.ceil);
  return { filters: out, hours: changed ? { from, to } : null };
}

export async function termsView(root: HTMLElement, route: Route): Promise<void> {
  const p = route.params;
  // The selected term set (`terms`) opens its detail; the list shows every term set.
  const { filters, hours } = wholeHoursOf(apiFilters(p));
  filters.delete('terms');
  const { term_sets } = await api.termSets(filters);
  const q = (p.get('q') ?? '').toLowerCase();
  const sort = COLUMNS.find((c) => c.key === p.get('sort')) ?? COLUMNS[2]!;
  const dir = p.get('dir') === 'asc' ? 1 : -1;
  const shown = term_sets
    .filter((t) => !q || t.term_set.some((x) => x.toLowerCase().includes(q)) || (t.verdict ?? '').includes(q))
    .sort((a, b) => dir * compare(sort.value(a), sort.value(b)));
  const selected = p.get('terms');

  const search = h('input', {
    type: 'search',
    name: 'q',
    value: p.get('q') ?? '',
    placeholder: 'search terms',
    'aria-label': 'Search terms',
  });
  search.addEventListener('change', () => update({ q: search.value }));
  root.append(
    h(
      'div',
      { class: 'toolbar' },
      search,
      h(
        'span',
        { class: 'stat', 'data-stat': 'term-sets' },
        `${shown.length} of ${term_sets.length} term sets`,
      ),
      hours
        ? h(
            'span',
            { class: 'stat', 'data-stat': 'whole-hours' },
            `counted in whole hours (UTC): ${time(hours.from)} to ${time(hours.to)}`,
          )
        : null,
    ),
  );
  const head = h(
    'tr',
    {},
    COLUMNS.map((c) =>
      h(
        'th',
        { scope: 'col', 'aria-sort': c === sort ? (dir > 0 ? 'ascending' : 'descending') : undefined },
        h(
          'button',
          {
            type: 'button',
            class: 'sort',
            'data-sort': c.key,
            onclick: () => update({ sort: c.key, dir: c === sort && dir < 0 ? 'asc' : 'desc' }),
          },
          c.label,
          c === sort ? (dir > 0 ? ' ▲' : ' ▼') : '',
        ),
      ),
    ),
  );
  const body = h(
    'tbody',
    {},
    shown.map((t) =>
      h(
        'tr',
        {
          class: t.terms_key === selected ? 'selected' : undefined,
          'data-terms-key': t.terms_key,
          tabindex: 0,
          onclick: () => update({ terms: t.terms_key }),
          onkeydown: (ev: Event) => {
            if ((ev as KeyboardEvent).key === 'Enter') update({ terms: t.terms_key });
          },
        },
        COLUMNS.map((c) => h('td', { class: `col-${c.key}` }, c.show(t))),
      ),
    ),
  );
  root.append(h('table', { class: 'terms', id: 'term-table' }, h('thead', {}, head), body));

  const chosen = term_sets.find((t) => t.terms_key === selected);
  if (chosen) await termDetail(root, chosen, filters);
}

async function termDetail(root: HTMLElement, t: TermSetSummary, filters: URLSearchParams): Promise<void> {
  const scoped = withParams(filters, { terms: t.terms_key });
  const [agg, outcomes, findings] = await Promise.all([
    api.aggregation(withParams(scoped, { group_by: 'hour,kind' })),
    api.outcomes(withParams(scoped, { limit: '50', order: 'desc' })),
    api.findings(withParams(scoped, { limit: '200' })),
  ]);
  const detail = h(
    'section',
    { class: 'detail', 'data-detail': t.terms_key },
    h('h2', {}, 'Term set: ', h('q', {}, terms(t.term_set))),
  );
  root.append(detail);
  const rows = agg.rows.map(
    (r) => [r.keys[0] ?? '', r.keys[1] ?? '', r.n, r.missing, r.missing_rate] as const,
  );
  chartPanel(detail, {
    id: 'term-timeline',
    title: 'Missing over time, tests against controls',
    filename: 'silentdrop-term-timeline.csv',
    data: { header: ['hour', 'kind', 'n', 'missing', 'missing_rate'], rows: rows.map((r) => [...r]) },
    height: 260,
    option: {
      legend: { data: ['test', 'control'] },
      grid: { left: 56, right: 24, top: 36, bottom: 36 },
      xAxis: { type: 'time' },
      yAxis: { type: 'value', min: 0, max: 1 },
      tooltip: {
        trigger: 'item',
        formatter: (p: { seriesName: string; value: [string, number, number] }) =>
          `${escapeHtml(p.seriesName)} ${escapeHtml(p.value[0])}<br>${escapeHtml(pct(p.value[1]))} of ${escapeHtml(p.value[2])}`,
      },
      series: (['test', 'control'] as const).map((kind) => ({
        name: kind,
        type: 'line',
        itemStyle: { color: kind === 'test' ? '#c0392b' : '#2471a3' },
        data: rows.filter((r) => r[1] === kind).map((r) => [r[0], r[4], r[2]]),
      })),
    },
  });
  // Corroboration (decision 012): independent networks / networks / probes behind each arm.
  const probes = (f: FindingRecord, arm: 'test' | 'control') => {
    const c = f.evidence.independent_probes?.[arm];
    return c ? `${c.independent} independent (${c.asns} ASNs, ${c.probes} probes)` : '—';
  };
  const findingTable = dataTable({
    header: ['scope', 'verdict', 'settled', 'n (tests)', 'test evidence from', 'control evidence from'],
    rows: findings.findings.map((f) => [
      `${f.scope.sender_region ?? '*'} → ${f.scope.recipient_region ?? '*'}, ${f.scope.conversation_kind ?? '*'}`,
      f.verdict,
      f.settled ? 'yes' : 'no',
      f.evidence.test_trials,
      probes(f, 'test'),
      probes(f, 'control'),
    ]),
  });
  findingTable.dataset.table = 'findings';
  detail.append(h('h3', {}, 'Findings by scope'), findingTable);
  const raw = (o: OutcomeRecord) => [
    time(o.send_at),
    o.kind,
    o.status,
    `${o.sender_region} → ${o.recipient_region}`,
    o.conversation_kind,
    ms(o.latency_ms),
    o.received_text ?? '',
  ];
  detail.append(
    h('h3', {}, 'Latest outcomes'),
    dataTable({
      header: ['sent', 'kind', 'status', 'regions', 'conversation', 'latency', 'text as received'],
      rows: outcomes.outcomes.map(raw),
    }),
  );
}
