/** The dashboard: hash routing between five views; every view renders from the URL alone. */
import './style.css';
import { disposeCharts } from './charts.ts';
import { h } from './dom.ts';
import { renderFilters } from './filters.ts';
import { apiFilters, readRoute, routeHash, VIEWS, type View } from './state.ts';
import { latency } from './views/latency.ts';
import { overview } from './views/overview.ts';
import { probes } from './views/probes.ts';
import { regions } from './views/regions.ts';
import { termsView } from './views/terms.ts';

const TITLES: Record<View, string> = {
  overview: 'Overview',
  terms: 'Terms',
  regions: 'Regions',
  latency: 'Latency',
  probes: 'Probes',
};

const RENDER: Record<View, (root: HTMLElement, route: ReturnType<typeof readRoute>) => Promise<void>> = {
  overview,
  terms: termsView,
  regions,
  latency,
  probes: (root) => probes(root),
};

const byId = <T extends HTMLElement>(id: string) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from index.html`);
  return el as T;
};

let generation = 0;

async function render(): Promise<void> {
  const route = readRoute();
  const mine = ++generation;
  const nav = byId('nav');
  const keep = apiFilters(route.params);
  nav.replaceChildren(
    ...VIEWS.map((v) =>
      h(
        'a',
        { href: routeHash(v, keep), 'aria-current': v === route.view ? 'page' : undefined, 'data-view': v },
        TITLES[v],
      ),
    ),
  );
  const filters = byId<HTMLFormElement>('filters');
  filters.hidden = route.view === 'probes';
  const root = byId('view');
  disposeCharts();
  const page = h(
    'div',
    { class: `view view-${route.view}`, 'data-view': route.view, 'aria-busy': 'true' },
    h('h1', {}, TITLES[route.view]),
  );
  root.replaceChildren(page);
  document.title = `silentdrop: ${TITLES[route.view]}`;
  try {
    await Promise.all([renderFilters(filters, route), RENDER[route.view](page, route)]);
  } catch (err) {
    if (mine !== generation) return;
    page.append(
      h('p', { class: 'error', role: 'alert' }, `Could not load this view: ${(err as Error).message}`),
    );
  }
  if (mine === generation) {
    page.setAttribute('aria-busy', 'false');
    document.body.dataset.ready = route.view;
  }
}

window.addEventListener('hashchange', () => {
  void render();
});
void render();
