/**
 * Evidence from paired outcomes: one row per recipient of a test/control pair, both final (the
 * test's outcome and its own control's outcome for the same recipient). Rows are grouped into
 * windows (a round, or a follow-up's send time) and counted by `buildEvidence`'s rule (`addOutcome`); windows where both
 * arms mostly failed are outages (`isOutage`) and left out of the evidence. This is the one
 * evidence builder over stored rows (docs/decisions/018): collector/findings.ts groups the rows
 * by term set × scope and calls it.
 */
import type { OutcomeStatus } from '../../protocol/outcomes.ts';
import { isOutage, type WindowCounts } from './changepoint.ts';
import { addOutcome, type Evidence, type EvidenceTally, emptyEvidence } from './verdict.ts';

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

const COUNTED: ReadonlySet<string> = new Set(['delivered', 'delayed', 'missing', 'altered', 'rejected']);

/** Both arms final: the pair counts whole or not at all. */
const isCounted = (r: PairedRow) => COUNTED.has(r.testStatus) && COUNTED.has(r.controlStatus);

/** Counts the pair's two outcomes into `e` (the caller checked `isCounted`). */
function addPair(e: EvidenceTally, r: PairedRow): void {
  addOutcome(e, 'test', r.testStatus as OutcomeStatus, r.testLatencyMs);
  addOutcome(e, 'control', r.controlStatus as OutcomeStatus, r.controlLatencyMs);
}

const resolved = Promise.resolve();
/** The `tick` of a caller that need not yield (tests, small inputs): resolves at once. */
export const noYield = (): Promise<void> => resolved;

/**
 * Per-window counts (time ordered, outages included, as `detectChanges` wants them), the evidence
 * without outage windows, and the rows that evidence counted (whose probes corroborate it). One
 * pass over the rows and one over the counted ones, without an object per outcome. A cell can hold
 * months of pairs and this runs on the collector's event loop: `tick` is awaited between rows
 * (see collector/yield.ts) and lets it give the loop a turn.
 */
export async function pairedEvidence<R extends PairedRow>(
  rows: readonly R[],
  tick: () => Promise<void> = noYield,
): Promise<{ windows: WindowCounts[]; evidence: Evidence; counted: R[] }> {
  const byWindow = new Map<number, { from: number; to: number; rows: R[]; counts: EvidenceTally }>();
  for (const [i, r] of rows.entries()) {
    if ((i & 1023) === 1023) await tick();
    let entry = byWindow.get(r.windowMs);
    if (!entry) {
      entry = { from: r.windowMs, to: r.windowMs, rows: [], counts: emptyEvidence(false) };
      byWindow.set(r.windowMs, entry);
    }
    if (!isCounted(r)) continue;
    entry.to = Math.max(entry.to, r.sendMs);
    entry.rows.push(r);
    addPair(entry.counts, r);
  }
  const windows: WindowCounts[] = [];
  const evidence = emptyEvidence();
  const counted: R[] = [];
  for (const e of [...byWindow.values()].sort((a, b) => a.from - b.from)) {
    const w: WindowCounts = { from: e.from, to: e.to, test: e.counts.test, control: e.counts.control };
    windows.push(w);
    if (isOutage(w)) continue;
    for (const r of e.rows) {
      if ((counted.length & 1023) === 1023) await tick();
      counted.push(r);
      addPair(evidence, r);
    }
  }
  return { windows, evidence, counted };
}
