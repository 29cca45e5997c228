/**
 * The exactly-once check of a fault case, from both ends:
 * - produced: every event id the probes' journals ever showed (the outbox writes an event
 *   there before anything may upload it), per probe;
 * - stored: rows in `events` for those (probe, event id) keys; duplicated: rows beyond the
 *   first for a key, plus a second send report for a canary or a second receipt of a canary
 *   by one account (the same observation stored twice under two ids); lost: produced, not
 *   stored and not in the probe's dead-letter file (refused events are not expected here);
 * - canaries: every canary a probe was handed (its journal's ledger) has exactly one send
 *   report (`sent`, `rejected` or `failed` with its failure code: a missed deadline is
 *   `failed`/`deadline_missed`); a canary the collector marked handed out that no probe
 *   received (the answer was lost with the connection) has none, and no outcome;
 * - outcomes: none `pending` or `missing` (the policy censors nothing, the testbed loses
 *   nothing); findings: no verdict of a finding (suppressed, delayed, …) at any time.
 */
import type { LocalFleet } from '../../cli/local/network.ts';
import { storedAccounting } from '../../collector/db/inspect.ts';
import type { Db } from '../../collector/db/open.ts';
import { deadLetters, type OutboxWatch } from '../../e2e/support/journal.ts';

export interface Accounting {
  name: string;
  produced: number;
  stored: number;
  duplicated: number;
  lost: number;
  /** Dead-lettered (refused) events: not stored by design; expected 0 here. */
  refused: number;
  /** Rows in `events` no journal showed (expected 0). */
  unexplained: number;
  /** Canaries the campaign planned. */
  planned: number;
  /** Planned, never handed out, deadline passed (the probes could not check in): no events, no outcome. */
  neverHandedOut: number;
  canariesHeld: number;
  canariesReported: number;
  /** Marked handed out by the collector, never received by a probe (answer lost). */
  handOutsLost: number;
  /** Failure codes of `failed` send reports. */
  failures: Record<string, number>;
  outcomes: Record<string, number>;
  findings: string[];
  problems: string[];
}

export async function accountFor(
  name: string,
  db: Db,
  fleet: LocalFleet,
  journals: OutboxWatch,
  findingsSeen: ReadonlySet<string>,
): Promise<Accounting> {
  const stored = await storedAccounting(db, fleet.campaign.id);
  const problems: string[] = [];
  let produced = 0;
  let storedCount = 0;
  let duplicated = 0;
  let lost = 0;
  let refused = 0;
  const held = new Set<string>();
  const producedKeys = new Set<string>();
  for (const [region, probeId] of Object.entries(fleet.probeIds)) {
    const probe = fleet.probes.get(region);
    const view = probe ? journals.seen.get(probe.dir) : undefined;
    if (!probe || !view) {
      problems.push(`no journal for the ${region} probe`);
      continue;
    }
    const dead = deadLetters(probe.dir);
    for (const c of view.canaries) held.add(c);
    for (const id of view.events.keys()) {
      produced++;
      const key = `${probeId} ${id}`;
      producedKeys.add(key);
      const n = stored.eventRows.get(key) ?? 0;
      if (n > 0) storedCount++;
      if (n > 1) {
        duplicated += n - 1;
        problems.push(`event ${key} stored ${n} times`);
      }
      if (n === 0) {
        if (dead.has(id)) refused++;
        else {
          lost++;
          if (lost <= 5) problems.push(`event ${key} (${view.events.get(id)?.type}) produced, not stored`);
        }
      }
    }
  }
  let unexplained = 0;
  for (const key of stored.eventRows.keys()) if (!producedKeys.has(key)) unexplained++;
  if (unexplained > 0) problems.push(`${unexplained} stored events no journal showed`);

  let reported = 0;
  let handOutsLost = 0;
  let neverHandedOut = 0;
  const failures: Record<string, number> = {};
  for (const c of stored.canaries) {
    for (const f of c.failures) failures[f] = (failures[f] ?? 0) + 1;
    for (const [account, n] of Object.entries(c.receipts)) {
      if (n > 1) {
        duplicated += n - 1;
        problems.push(`canary ${c.id}: ${n} receipts by account ${account}`);
      }
    }
    if (held.has(c.id)) {
      if (c.reports === 1) reported++;
      else if (c.reports > 1) {
        duplicated += c.reports - 1;
        problems.push(`canary ${c.id}: ${c.reports} send reports`);
      } else problems.push(`canary ${c.id}: handed to a probe, no send report`);
    } else if (c.reports > 0) {
      problems.push(`canary ${c.id}: ${c.reports} send reports, but no probe was handed it`);
    } else if (c.handedOut) {
      handOutsLost++;
    } else if (Date.parse(c.deadlineAt) < Date.now()) {
      neverHandedOut++;
    }
    if (!held.has(c.id) && c.outcomes > 0)
      problems.push(`canary ${c.id}: no probe had it, yet ${c.outcomes} outcomes`);
  }
  const canaryIds = new Set(stored.canaries.map((c) => c.id));
  for (const c of held)
    if (!canaryIds.has(c)) problems.push(`canary ${c}: held by a probe, not in the campaign`);

  for (const status of ['pending', 'missing']) {
    if (stored.outcomes[status]) problems.push(`${stored.outcomes[status]} outcomes ${status}`);
  }
  const findings = [...findingsSeen];
  for (const verdict of Object.keys(stored.findings)) {
    if (!findings.includes(verdict) && !['none', 'inconclusive'].includes(verdict)) findings.push(verdict);
  }
  if (findings.length > 0) problems.push(`findings made: ${findings.join(', ')}`);

  return {
    name,
    produced,
    stored: storedCount,
    duplicated,
    lost,
    refused,
    unexplained,
    planned: stored.canaries.length,
    neverHandedOut,
    canariesHeld: held.size,
    canariesReported: reported,
    handOutsLost,
    failures,
    outcomes: stored.outcomes,
    findings,
    problems,
  };
}

export const TABLE_HEADER = [
  'case'.padEnd(34),
  'produced',
  'stored',
  'duplicated',
  'lost',
  'planned',
  'not handed out',
  'held',
  'one report',
  'answer lost',
  'outcomes',
].join('  ');

/** One line of the table. */
export function formatLine(a: Accounting, seconds: number): string {
  const outcomes = Object.entries(a.outcomes)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const failures = Object.entries(a.failures)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const line = [
    `${a.name} (${seconds} s)`.padEnd(34),
    String(a.produced).padStart(8),
    String(a.stored).padStart(6),
    String(a.duplicated).padStart(10),
    String(a.lost).padStart(4),
    String(a.planned).padStart(7),
    String(a.neverHandedOut).padStart(14),
    String(a.canariesHeld).padStart(4),
    String(a.canariesReported).padStart(10),
    String(a.handOutsLost).padStart(11),
    `${outcomes}${failures ? `; failed: ${failures}` : ''}`,
  ].join('  ');
  return line;
}
