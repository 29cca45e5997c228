/** Repository rows → research API records (the same shape in JSON, NDJSON and CSV). */
import type { FindingRecord, OutcomeRecord } from '../../protocol/research.ts';
import { wilson } from '../analysis/stats.ts';
import type { StatusCounts } from '../db/research-aggregation.ts';
import type { FindingRow } from '../db/research-findings.ts';
import type { ResearchOutcomeRow } from '../db/research-outcomes.ts';

export const CONFIDENCE = 0.95;

export const termsKey = (terms: readonly string[]) => JSON.stringify(terms);

export function outcomeRecord(r: ResearchOutcomeRow): OutcomeRecord {
  const { key_send_at: _key, ...rest } = r;
  return {
    ...rest,
    status: r.status as OutcomeRecord['status'],
    terms_key: r.term_set ? termsKey(r.term_set) : null,
  };
}

function rate(k: number, n: number) {
  if (n === 0) return { rate: null, interval: null };
  const [low, high] = wilson(k, n, CONFIDENCE);
  return { rate: k / n, interval: { low, high } };
}

export function groupCounts(c: StatusCounts) {
  const n = c.delivered + c.delayed + c.missing + c.altered + c.rejected;
  const missing = rate(c.missing, n);
  const adverse = rate(n - c.delivered, n);
  return {
    n,
    delivered: c.delivered,
    delayed: c.delayed,
    missing: c.missing,
    altered: c.altered,
    rejected: c.rejected,
    failed: c.failed,
    pending: c.pending,
    missing_rate: missing.rate,
    missing_interval: missing.interval,
    adverse_rate: adverse.rate,
    adverse_interval: adverse.interval,
    latency_p50_ms: c.latency_p50_ms,
    latency_p95_ms: c.latency_p95_ms,
  };
}

export const EMPTY_COUNTS: StatusCounts = {
  delivered: 0,
  delayed: 0,
  missing: 0,
  altered: 0,
  rejected: 0,
  failed: 0,
  pending: 0,
  latency_p50_ms: null,
  latency_p95_ms: null,
};

const scopeValue = (scope: Record<string, unknown> | null, key: string) => {
  const v = scope?.[key];
  return typeof v === 'string' ? v : null;
};

export function findingRecord(f: FindingRow): FindingRecord {
  return {
    id: f.id,
    campaign_id: f.campaign_id,
    term_set: f.term_set,
    terms_key: termsKey(f.term_set),
    scope: {
      platform: scopeValue(f.scope, 'platform'),
      sender_region: scopeValue(f.scope, 'sender_region'),
      recipient_region: scopeValue(f.scope, 'recipient_region'),
      conversation_kind: scopeValue(f.scope, 'conversation_kind'),
    },
    verdict: f.verdict as FindingRecord['verdict'],
    onset_at: f.onset_at,
    end_at: f.end_at,
    evidence: {
      test_trials: f.test_trials,
      control_trials: f.control_trials,
      test_rate: f.test_rate,
      control_rate: f.control_rate,
      interval: f.ci_low !== null && f.ci_high !== null ? { low: f.ci_low, high: f.ci_high } : null,
      p_value: f.p_value,
      q_value: f.q_value,
      method: f.method,
      independent_probes: f.independent_probes,
    },
    settled: f.settled,
    minimal_term_sets: f.minimal_term_sets ?? [],
    created_at: f.created_at,
  };
}
