/**
 * Evidence from paired outcomes: one row per recipient of a test/control pair, both final (the
 * test's outcome and its own control's outcome for the same recipient). Rows are grouped into
 * windows (a round, or a follow-up's send time) and counted by `buildEvidence`; windows where both
 * arms mostly failed are outages (`isOutage`) and left out of the evidence. This is the one
 * evidence builder over stored rows (docs/decisions/018): collector/findings.ts groups the rows
 * by term set × scope and calls it.
 */
import { isOutage, type WindowCounts } from './changepoint.ts';
import { buildEvidence, type Evidence, type OutcomeRow } from './verdict.ts';

export interface PairedRow {
  /** Start of the pair's window, epoch ms. */
  windowMs: number;
  /** The test's send time, epoch ms. */
  sendMs: number;
  testStatus: string;
  testLatencyMs: number | null;
  controlStatus: string;
  controlLatencyMs: number | null;
}

const COUNTED: readonly string[] = ['delivered', 'delayed', 'missing', 'altered', 'rejected'];

/** The pair's two outcome rows, or none when either arm is not final (the pair counts whole or not at all). */
function outcomeRows(r: PairedRow): OutcomeRow[] {
  if (!COUNTED.includes(r.testStatus) || !COUNTED.includes(r.controlStatus)) return [];
  return [
    { kind: 'test', status: r.testStatus as OutcomeRow['status'], latencyMs: r.testLatencyMs },
    { kind: 'control', status: r.controlStatus as OutcomeRow['status'], latencyMs: r.controlLatencyMs },
  ];
}

/**
 * Pure: per-window counts (time ordered, outages included, as `detectChanges` wants them), the
 * evidence without outage windows, and the rows that evidence counted (whose probes corroborate it).
 */
export function pairedEvidence<R extends PairedRow>(
  rows: readonly R[],
): { windows: WindowCounts[]; evidence: Evidence; counted: R[] } {
  const byWindow = new Map<number, { from: number; to: number; rows: R[] }>();
  for (const r of rows) {
    let entry = byWindow.get(r.windowMs);
    if (!entry) {
      entry = { from: r.windowMs, to: r.windowMs, rows: [] };
      byWindow.set(r.windowMs, entry);
    }
    if (outcomeRows(r).length === 0) continue;
    entry.to = Math.max(entry.to, r.sendMs);
    entry.rows.push(r);
  }
  const ordered = [...byWindow.values()]
    .sort((a, b) => a.from - b.from)
    .map((e) => {
      const { test, control } = buildEvidence(e.rows.flatMap(outcomeRows));
      return { w: { from: e.from, to: e.to, test, control } satisfies WindowCounts, rows: e.rows };
    });
  const counted = ordered.filter((e) => !isOutage(e.w)).flatMap((e) => e.rows);
  return {
    windows: ordered.map((e) => e.w),
    evidence: buildEvidence(counted.flatMap(outcomeRows)),
    counted,
  };
}
