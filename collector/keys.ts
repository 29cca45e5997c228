/**
 * The keys of the adaptive loop (docs/decisions/018), each with one constructor and one parser.
 * They are stored (findings.key, sequential_states.key, followups.key, derived_term_sets.key),
 * so their spelling is fixed:
 *
 *   term set   六四 + 刘晓波                          collector/planning/terms.ts (re-exported here)
 *   scope      testbed|group|US|CN                    platform|conversation kind|sender|recipient region
 *   finding    六四 + 刘晓波|testbed|group|US|CN      term set key|scope key
 *   follow-up  screen|testbed|group|US|CN             screen|scope key
 *              isolate|六四 + 刘晓波|testbed|group|US|CN  isolate|finding key
 *
 * Nothing else spells a separator. The constructors refuse what would make a key ambiguous (a
 * term containing ` + `, a scope field that is empty or contains `|`); a term may contain `|`,
 * since a finding key is parsed from the right. The parsers throw for a string their
 * constructor cannot have built.
 */
import type { FindingScope } from './db/findings.ts';
import { canonicalTermSet, parseTermSetKey, type TermSetKey, termSetKey } from './planning/terms.ts';

export { canonicalTermSet, parseTermSetKey, type TermSetKey, termSetKey };

export type ScopeKey = string & { readonly __key: 'scope' };
export type FindingKey = string & { readonly __key: 'finding' };
export type FollowupKey = string & { readonly __key: 'follow-up' };

export type FollowupProcedure = 'isolate' | 'screen';

export type ParsedFollowupKey =
  | { procedure: 'screen'; scope: FindingScope }
  | { procedure: 'isolate'; termSet: string[]; scope: FindingScope };

const SEP = '|';
const KINDS: readonly string[] = ['direct', 'group'] satisfies FindingScope['conversation_kind'][];

function scopeField(value: string, name: string): string {
  if (value === '' || value.includes(SEP)) throw new Error(`not a scope ${name}: ${JSON.stringify(value)}`);
  return value;
}

export function scopeKey(s: FindingScope): ScopeKey {
  return [
    scopeField(s.platform, 'platform'),
    scopeField(s.conversation_kind, 'conversation kind'),
    scopeField(s.sender_region, 'sender region'),
    scopeField(s.recipient_region, 'recipient region'),
  ].join(SEP) as ScopeKey;
}

export function parseScopeKey(key: string): FindingScope {
  const parts = key.split(SEP);
  const [platform, kind, sender, recipient] = parts;
  if (parts.length !== 4 || !platform || !kind || !sender || !recipient || !KINDS.includes(kind))
    throw new Error(`not a scope key: ${JSON.stringify(key)}`);
  return {
    platform,
    conversation_kind: kind as FindingScope['conversation_kind'],
    sender_region: sender,
    recipient_region: recipient,
  };
}

/**
 * The key a finding and its sequential state are stored under: a term set's key in a scope. Either
 * part may come as its key already built (a term set tried in every scope of a round is
 * canonicalised once, not once per scope).
 */
export function findingKey(
  termSet: readonly string[] | TermSetKey,
  scope: FindingScope | ScopeKey,
): FindingKey {
  const t = typeof termSet === 'string' ? termSet : termSetKey(termSet);
  const s = typeof scope === 'string' ? scope : scopeKey(scope);
  return `${t}${SEP}${s}` as FindingKey;
}

export function parseFindingKey(key: string): { termSet: string[]; scope: FindingScope } {
  const parts = key.split(SEP);
  if (parts.length < 5) throw new Error(`not a finding key: ${JSON.stringify(key)}`);
  return {
    termSet: parseTermSetKey(parts.slice(0, -4).join(SEP)),
    scope: parseScopeKey(parts.slice(-4).join(SEP)),
  };
}

/** The key of a campaign's screen in one scope (one per scope). */
export function screenKey(scope: FindingScope): FollowupKey {
  return `screen${SEP}${scopeKey(scope)}` as FollowupKey;
}

/** The key of a campaign's isolation of one term set in one scope. */
export function isolateKey(termSet: readonly string[], scope: FindingScope): FollowupKey {
  return `isolate${SEP}${findingKey(termSet, scope)}` as FollowupKey;
}

export function parseFollowupKey(key: string): ParsedFollowupKey {
  const at = key.indexOf(SEP);
  const procedure = key.slice(0, at);
  const rest = key.slice(at + 1);
  if (at > 0 && procedure === 'screen') return { procedure, scope: parseScopeKey(rest) };
  if (at > 0 && procedure === 'isolate') return { procedure, ...parseFindingKey(rest) };
  throw new Error(`not a follow-up key: ${JSON.stringify(key)}`);
}
