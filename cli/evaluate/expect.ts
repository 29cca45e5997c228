/**
 * What an evaluate report should say for a policy (tests): the verdict a rule implies for a
 * term set in a scope — drop → suppressed, delay (past the deadline) → delayed, notice →
 * rejected, replace → altered — and `none` where no rule fires. Only the rule forms the test
 * tables use (any/all, conversation, sender and recipient regions) are interpreted here.
 */
import { termSetKey } from '../../collector/keys.ts';
import type { ReportFinding } from './report.ts';

export interface RuleLike {
  match: { any?: string[]; all?: string[] };
  action: 'drop' | 'delay' | 'notice' | 'replace';
  scope?: {
    conversation?: 'direct' | 'group' | 'any';
    sender_region?: string[];
    recipient_region?: string[];
  };
}

const VERDICT = { drop: 'suppressed', delay: 'delayed', notice: 'rejected', replace: 'altered' } as const;

function fires(rule: RuleLike, terms: readonly string[], scope: ReportFinding['scope']): boolean {
  const m = rule.match;
  const matched = m.any
    ? m.any.some((t) => terms.includes(t))
    : (m.all ?? []).every((t) => terms.includes(t));
  if (!matched) return false;
  const s = rule.scope ?? {};
  if (s.conversation && s.conversation !== 'any' && s.conversation !== scope.conversation) return false;
  if (s.sender_region && !s.sender_region.includes(scope.sender_region)) return false;
  // a notice is decided for the sender: every recipient of the message is affected alike
  if (
    rule.action !== 'notice' &&
    s.recipient_region &&
    !s.recipient_region.includes(scope.recipient_region)
  ) {
    return false;
  }
  return true;
}

/** The verdict the first firing rule implies, or `none`. */
export function expectedVerdict(
  rules: readonly RuleLike[],
  terms: readonly string[],
  scope: ReportFinding['scope'],
): string {
  const rule = rules.find((r) => fires(r, terms, scope));
  return rule ? VERDICT[rule.action] : 'none';
}

/** Human-readable differences between a report and the policy; empty when it names exactly the rules. */
export function reportMismatches(
  rules: readonly RuleLike[],
  findings: readonly ReportFinding[],
  expectedTermSets: readonly (readonly string[])[],
): string[] {
  const out: string[] = [];
  const key = termSetKey;
  const reported = new Set(findings.map((f) => key(f.terms)));
  for (const t of expectedTermSets) if (!reported.has(key(t))) out.push(`no finding for ${key(t)}`);
  const wanted = new Set(expectedTermSets.map(key));
  for (const f of findings) {
    const where = `${key(f.terms)} ${f.scope.conversation} ${f.scope.sender_region}→${f.scope.recipient_region}`;
    if (!wanted.has(key(f.terms))) out.push(`unexpected term set ${where}`);
    const want = expectedVerdict(rules, f.terms, f.scope);
    if (f.verdict !== want)
      out.push(`${where}: ${f.verdict}, expected ${want} (n=${f.n_test}/${f.n_control})`);
  }
  return out;
}
