/**
 * View state lives in the URL hash (`#/terms?platform=testbed&q=…`), so a view can be
 * shared by its address. Filters common to all views are kept across view changes.
 */
export const VIEWS = ['overview', 'terms', 'regions', 'latency', 'probes'] as const;
export type View = (typeof VIEWS)[number];

/** Filters passed straight to the research API. */
export const FILTER_KEYS = [
  'campaign',
  'platform',
  'sender_region',
  'recipient_region',
  'conversation_kind',
  'from',
  'to',
  'terms',
] as const;

export interface Route {
  view: View;
  params: URLSearchParams;
}

export function readRoute(hash = location.hash): Route {
  const [path = '', query = ''] = hash.replace(/^#\/?/, '').split('?', 2);
  const view = (VIEWS as readonly string[]).includes(path) ? (path as View) : 'overview';
  return { view, params: new URLSearchParams(query) };
}

export function routeHash(view: View, params: URLSearchParams): string {
  const q = params.toString();
  return `#/${view}${q ? `?${q}` : ''}`;
}

/** Changes some parameters of the current view (empty values are removed). */
export function update(changes: Record<string, string | null | undefined>, view?: View): void {
  const r = readRoute();
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '') r.params.delete(k);
    else r.params.set(k, v);
  }
  location.hash = routeHash(view ?? r.view, r.params);
}

/** The API filters of the current route. */
export function apiFilters(params: URLSearchParams): URLSearchParams {
  const out = new URLSearchParams();
  for (const k of FILTER_KEYS) {
    const v = params.get(k);
    if (v) out.set(k, v);
  }
  return out;
}

export function withParams(
  base: URLSearchParams,
  extra: Record<string, string | undefined>,
): URLSearchParams {
  const out = new URLSearchParams(base);
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) out.set(k, v);
  return out;
}
