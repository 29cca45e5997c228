/**
 * The `silentdrop evaluate` report (issue 4), read from Postgres: the campaign's stored
 * findings (collector/findings.ts) for every tested term set — the listed ones and the
 * minimal combinations isolation derived — in every scope the conversations allow, and the
 * number of canaries actually sent (tests and controls, follow-ups included).
 */
import {
  messagesSent,
  possibleScopes,
  type ReportedFinding,
  reportedFindings,
  runningFollowups,
} from '../../collector/db/evaluation.ts';
import { derivedTermSets, type FindingScope } from '../../collector/db/findings.ts';
import type { Queryable } from '../../collector/db/open.ts';
import { isFindingVerdict } from '../../collector/findings.ts';
import { canonicalTermSet, findingKey, scopeKey, type TermSetKey, termSetKey } from '../../collector/keys.ts';

export interface ReportFinding {
  terms: string[];
  verdict: string;
  scope: { conversation: 'direct' | 'group'; sender_region: string; recipient_region: string };
  rate_test: number;
  rate_control: number;
  ci: [number, number];
  p: number;
  n_test: number;
  n_control: number;
  /** Extra (not in the example, kept for the reader): BH q, settled, onset. */
  q?: number;
  settled: boolean;
}

export interface EvaluationReport {
  version: 1;
  messages_sent: number;
  findings: ReportFinding[];
  /** Extra: how the run ended and what ran. */
  run?: Record<string, unknown>;
}

export interface ReportState {
  report: EvaluationReport;
  /** Every term set × scope has a settled verdict and no follow-up is running. */
  settled: boolean;
  open: number;
  /**
   * Combinations isolation derived that the judging refuted (term-set keys): every verdict of
   * theirs settled, none a minimal finding (`none`, or explained by a subset of it, listed or
   * derived, where it is suppressed). Left out of the findings; `run.refuted_combinations` names them.
   */
  refuted: string[];
}

/** `a.localeCompare(b)`'s order, without building a collator per comparison. */
const collator = new Intl.Collator();

const round6 = (x: number | null) => (x === null || !Number.isFinite(x) ? 0 : Math.round(x * 1e6) / 1e6);

/**
 * The report as it stands (`assembleReport` on what is stored), and whether follow-ups still run.
 */
export async function readReport(
  q: Queryable,
  campaignId: string,
  listed: readonly string[][],
): Promise<ReportState> {
  const assembled = assembleReport(
    await possibleScopes(q, campaignId),
    listed,
    await derivedTermSets(q, campaignId),
    await reportedFindings(q, campaignId),
  );
  const running = await runningFollowups(q, campaignId);
  return {
    report: { version: 1, messages_sent: await messagesSent(q, campaignId), findings: assembled.findings },
    settled: assembled.open === 0 && running === 0 && assembled.scopes > 0,
    open: assembled.open + running,
    refuted: assembled.refuted,
  };
}

/**
 * The report's findings: every listed term set and every combination isolation derived, in
 * every scope, in a stable order. A term set × scope without data is `inconclusive` with n = 0;
 * a finding that a proper subset explains in its scope (not minimal) is left out there. A
 * derived combination whose verdicts all settled without one minimal finding is left out
 * altogether (`refuted`): isolation took it for a combination, and the rounds, judging it with
 * controls in every scope, showed that it is not one — a partial drop (a rule that fires on some
 * messages only) can make isolation keep terms that do not matter (decision 038). `open` counts
 * the term set × scope verdicts not yet settled.
 */
export function assembleReport(
  scopes: readonly FindingScope[],
  listed: readonly (readonly string[])[],
  derived: readonly (readonly string[])[],
  stored: readonly ReportedFinding[],
): { findings: ReportFinding[]; open: number; refuted: string[]; scopes: number } {
  const byKey = new Map<string, ReportedFinding>(stored.map((f) => [f.key, f]));
  // by term set, then conversation kind, sender region and recipient region; each key built once
  // (read every second during a run: 500 sets × 28 scopes sorted on keys rebuilt per comparison
  // held the event loop of the in-process network ~100 ms a time)
  const scoped = scopes
    .map((scope) => ({ scope, key: scopeKey(scope) }))
    .sort(
      (a, b) =>
        collator.compare(a.scope.conversation_kind, b.scope.conversation_kind) ||
        collator.compare(a.scope.sender_region, b.scope.sender_region) ||
        collator.compare(a.scope.recipient_region, b.scope.recipient_region),
    );
  const seen = new Set<string>();
  const termSets: { terms: string[]; key: TermSetKey; listed: boolean }[] = [];
  for (const [list, isListed] of [
    [listed, true],
    [derived, false],
  ] as const) {
    for (const t of list) {
      const key = termSetKey(t);
      if (seen.has(key)) continue;
      seen.add(key);
      termSets.push({ terms: canonicalTermSet(t), key, listed: isListed });
    }
  }
  termSets.sort((a, b) => collator.compare(a.key, b.key));
  const findings: ReportFinding[] = [];
  const refuted: string[] = [];
  let open = 0;
  for (const { terms, key, listed: isListed } of termSets) {
    const mine = scoped.map(({ scope, key: sKey }) => ({ scope, f: byKey.get(findingKey(key, sKey)) }));
    if (
      !isListed &&
      mine.length > 0 &&
      mine.every(({ f }) => f?.settled === true && !(f.minimal && isFindingVerdict(f.verdict)))
    ) {
      refuted.push(key);
      continue;
    }
    for (const { scope, f } of mine) {
      if (f && !f.minimal && isFindingVerdict(f.verdict)) continue;
      if (!f?.settled) open++;
      findings.push({
        terms,
        verdict: f?.verdict ?? 'inconclusive',
        scope: {
          conversation: scope.conversation_kind,
          sender_region: scope.sender_region,
          recipient_region: scope.recipient_region,
        },
        rate_test: round6(f?.testRate ?? null),
        rate_control: round6(f?.controlRate ?? null),
        ci: [round6(f?.ciLow ?? null), round6(f?.ciHigh ?? 1)],
        p: f?.pValue ?? 1,
        n_test: f?.testTrials ?? 0,
        n_control: f?.controlTrials ?? 0,
        q: f?.qValue ?? 1,
        settled: f?.settled ?? false,
      });
    }
  }
  return { findings, open, refuted, scopes: scopes.length };
}
