/** Number, rate and time formatting for tables and charts. */
export const pct = (v: number | null | undefined, digits = 1) =>
  v === null || v === undefined ? '—' : `${(v * 100).toFixed(digits)}%`;

export const interval = (i: { low: number; high: number } | null | undefined) =>
  i ? `${pct(i.low)} – ${pct(i.high)}` : '—';

export const ms = (v: number | null | undefined) =>
  v === null || v === undefined ? '—' : v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`;

export const time = (iso: string | null | undefined) =>
  iso ? iso.replace('T', ' ').replace(/:\d\d\.\d{3}Z$/, 'Z') : '—';

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}

/** A term set as people read it: terms joined with " + ". */
export const terms = (set: readonly string[]) => set.join(' + ');
