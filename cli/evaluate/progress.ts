/**
 * The progress line of `silentdrop evaluate` (docs/decisions/014): messages sent, verdicts
 * settled per kind, the slowest open term set × scope and what it still needs, and an
 * estimate of the time left from the rate verdicts settled at over the last minute. Every
 * figure is read from the report (Postgres), none is guessed: when nothing settled lately the
 * estimate says so instead of inventing one.
 */
import { DEFAULT_SEQUENTIAL_DESIGN } from '../../collector/analysis/sequential.ts';
import type { ReportFinding, ReportState } from './report.ts';

export interface ProgressSample {
  atMs: number;
  settled: number;
}

const scopeOf = (f: ReportFinding) =>
  `${f.scope.conversation}|${f.scope.sender_region}|${f.scope.recipient_region}`;
const scopeText = (f: ReportFinding) =>
  `${f.terms.join(' + ')} (${f.scope.conversation} ${f.scope.sender_region}→${f.scope.recipient_region})`;

/** What the open term set × scope with the least evidence still needs. */
export function slowest(open: readonly ReportFinding[], screens: ReadonlyMap<string, number>): string {
  if (open.length === 0) return '';
  const design = DEFAULT_SEQUENTIAL_DESIGN;
  const pairs = (f: ReportFinding) => Math.min(f.n_test, f.n_control);
  const worst = [...open].sort(
    (a, b) =>
      Number(screens.has(scopeOf(b))) - Number(screens.has(scopeOf(a))) ||
      pairs(a) - pairs(b) ||
      scopeText(a).localeCompare(scopeText(b)),
  )[0];
  if (!worst) return '';
  const packs = screens.get(scopeOf(worst));
  if (packs !== undefined)
    return `slowest: ${scopeText(worst)}, waiting for its screen (${packs} packs so far)`;
  const n = pairs(worst);
  if (n < design.minPairs) {
    return `slowest: ${scopeText(worst)}, ${n} pairs, needs ${design.minPairs - n} more before its first look`;
  }
  return (
    `slowest: ${scopeText(worst)}, ${n} pairs, ${worst.verdict} so far, ` +
    `a verdict by ${Math.max(0, design.maxPairs - n)} more pairs at most`
  );
}

/** The time left at the rate verdicts settled over the last minute (samples oldest first). */
export function timeLeft(samples: readonly ProgressSample[], open: number): string {
  if (open === 0) return 'done';
  const last = samples[samples.length - 1];
  if (!last) return 'time left: unknown';
  const first = samples.find((s) => s.atMs >= last.atMs - 60_000) ?? last;
  const settled = last.settled - first.settled;
  const ms = last.atMs - first.atMs;
  if (settled <= 0 || ms <= 0) return 'time left: unknown (nothing settled in the last minute)';
  const s = Math.ceil((open / settled) * (ms / 1000));
  return `about ${s >= 120 ? `${Math.ceil(s / 60)} min` : `${s} s`} left`;
}

/** One progress line, e.g. `evaluate: 42 s, 310 messages; settled 40/66 (none 38, suppressed 2); …`. */
export function progressLine(
  state: ReportState,
  elapsedMs: number,
  samples: readonly ProgressSample[],
  screens: ReadonlyMap<string, number>,
): string {
  const { findings, messages_sent } = state.report;
  const settled = findings.filter((f) => f.settled);
  const kinds = new Map<string, number>();
  for (const f of settled) kinds.set(f.verdict, (kinds.get(f.verdict) ?? 0) + 1);
  const perKind = [...kinds.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const open = findings.filter((f) => !f.settled);
  const parts = [
    `evaluate: ${Math.round(elapsedMs / 1000)} s, ${messages_sent} messages sent`,
    `${settled.length}/${findings.length} verdicts settled${perKind ? ` (${perKind})` : ''}`,
  ];
  const slow = slowest(open, screens);
  if (slow) parts.push(slow);
  else if (state.open > 0) parts.push(`${state.open} follow-ups running`);
  parts.push(timeLeft(samples, open.length + (open.length === 0 ? state.open : 0)));
  return parts.join('; ');
}
