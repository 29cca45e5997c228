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
import { derivedTermSets } from '../../collector/db/findings.ts';
import type { Queryable } from '../../collector/db/open.ts';
import { isFindingVerdict } from '../../collector/findings.ts';
import { canonicalTermSet, findingKey, scopeKey, termSetKey } from '../../collector/keys.ts';

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

export async function testedTermSets(q: Queryable, campaignId: string, listed: readonly string[][]) {
  const derived = await derivedTermSets(q, campaignId);
  const seen = new Set<string>();
  const out: string[][] = [];
  for (const t of [...listed, ...derived]) {
    const k = termSetKey(t);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(canonicalTermSet(t));
  }
  return out;
}

export interface ReportState {
  report: EvaluationReport;
  /** Every term set × scope has a settled verdict and no follow-up is running. */
  settled: boolean;
  open: number;
}

/** `a.localeCompare(b)`'s order, without building a collator per comparison. */
const collator = new Intl.Collator();

const round6 = (x: number | null) => (x === null || !Number.isFinite(x) ? 0 : Math.round(x * 1e6) / 1e6);

/**
 * The report as it stands. A term set × scope without data is `inconclusive` with n = 0;
 * a finding that a proper subset explains in its scope (not minimal) is left out there.
 */
export async function readReport(
  q: Queryable,
  campaignId: string,
  listed: readonly string[][],
): Promise<ReportState> {
  const scopes = await possibleScopes(q, campaignId);
  const termSets = await testedTermSets(q, campaignId, listed);
  const stored = new Map<string, ReportedFinding>(
    (await reportedFindings(q, campaignId)).map((f) => [f.key, f]),
  );
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
  const keyed = termSets
    .map((terms) => ({ terms, key: termSetKey(terms) }))
    .sort((a, b) => collator.compare(a.key, b.key));
  const findings: ReportFinding[] = [];
  let open = 0;
  for (const { terms, key } of keyed) {
    for (const { scope, key: sKey } of scoped) {
      const f = stored.get(findingKey(key, sKey));
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
  const running = await runningFollowups(q, campaignId);
  return {
    report: { version: 1, messages_sent: await messagesSent(q, campaignId), findings },
    settled: open === 0 && running === 0 && scopes.length > 0,
    open: open + running,
  };
}
