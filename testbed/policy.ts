/**
 * The testbed policy (format: /work/shared/design.md, "Testbed policy format"):
 * types, loading from a YAML or JSON file, and validation of every field. A policy
 * that fails validation is refused as a whole with a PolicyError naming each field
 * path and line, so the testbed never starts half-configured.
 *
 * Defaults: `background` none (loss 0, no latency), `outages` none, `rules` none;
 * per rule: scope `conversation: any`, `sender_region: any`, `recipient_region: any`,
 * `probability: 1.0`, no `active` window (always active). `active` may leave out
 * `from` or `to` for a window open on that side; outages need both.
 */
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { Document, isMap, LineCounter, parseDocument } from 'yaml';
import { join, type PolicyIssue, Reader } from './policy-reader.ts';

export type { PolicyIssue } from './policy-reader.ts';

export type RuleAction = 'drop' | 'delay' | 'notice' | 'replace';
export type ConversationKind = 'direct' | 'group';
export type ConversationScope = ConversationKind | 'any';
/** A list of registration regions, or every region. */
export type RegionScope = readonly string[] | 'any';

/** [from, to) in epoch milliseconds; an open side is ±Infinity. */
export interface TimeWindow {
  from: number;
  to: number;
}

export interface TermMatch {
  mode: 'all' | 'any';
  terms: readonly string[];
}

export interface RuleScope {
  conversation: ConversationScope;
  senderRegion: RegionScope;
  recipientRegion: RegionScope;
}

interface RuleBase {
  id: string;
  match: TermMatch;
  scope: RuleScope;
  probability: number;
  active?: TimeWindow;
}

export type Rule =
  | (RuleBase & { action: 'drop' })
  | (RuleBase & { action: 'delay'; delayMs: number })
  | (RuleBase & { action: 'notice'; notice: string })
  | (RuleBase & { action: 'replace'; replaceWith: string });

export interface Policy {
  regions: readonly string[];
  background: { loss: number; latencyMs: { median: number; p95: number } };
  outages: readonly TimeWindow[];
  rules: readonly Rule[];
  /** Where it came from (file name), for logs. */
  source: string;
}

const MAX_ISSUES_SHOWN = 20;
const MAX_ISSUE_TEXT = 300;
const clip = (text: string) =>
  text.length <= MAX_ISSUE_TEXT
    ? text
    : `${text.slice(0, MAX_ISSUE_TEXT / 2)} … ${text.slice(-MAX_ISSUE_TEXT / 2)}`;

export class PolicyError extends Error {
  readonly code = 'SD_ERR_TESTBED_POLICY';
  constructor(
    readonly source: string,
    readonly issues: readonly PolicyIssue[],
  ) {
    // A hostile file can make thousands of problems with paths as long as the file: the
    // message lists the first few, each cut short (`issues` keeps them all).
    const shown = issues.slice(0, MAX_ISSUES_SHOWN).map((i) => `  ${clip(formatIssue(source, i))}`);
    if (issues.length > MAX_ISSUES_SHOWN) shown.push(`  … and ${issues.length - MAX_ISSUES_SHOWN} more`);
    super(
      `invalid testbed policy ${source}: ${issues.length} problem${issues.length === 1 ? '' : 's'}\n${shown.join('\n')}`,
    );
    this.name = 'PolicyError';
  }
}

export function formatIssue(source: string, issue: PolicyIssue): string {
  const where = issue.line === undefined ? source : `${source}:${issue.line}:${issue.column ?? 1}`;
  return `${where} ${issue.path}: ${issue.message}`;
}

const validated = new WeakSet<object>();

/** True for a Policy produced by this module's validation (not merely shaped like one). */
export function isValidatedPolicy(x: unknown): x is Policy {
  return typeof x === 'object' && x !== null && validated.has(x);
}

/** The largest policy read (hundreds of rules with their term lists fit in far less). */
export const MAX_POLICY_BYTES = 4 * 1024 * 1024;

/** Parse and validate policy text (YAML, or JSON, which is YAML too). */
export function parsePolicy(text: string, source = 'policy'): Policy {
  if (Buffer.byteLength(text) > MAX_POLICY_BYTES) {
    throw new PolicyError(source, [
      { path: '(file)', message: `larger than ${MAX_POLICY_BYTES / 1024 / 1024} MiB` },
    ]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new PolicyError(
      source,
      doc.errors.map((e) => ({
        path: '(syntax)',
        line: e.linePos?.[0].line,
        column: e.linePos?.[0].col,
        message: e.message.split('\n')[0] ?? e.message,
      })),
    );
  }
  return validateDocument(doc, source, lineCounter);
}

/** Validate a policy given as a plain object (same format as the file; no line numbers). */
export function policyFromObject(input: unknown, source = 'policy object'): Policy {
  return validateDocument(new Document(input), source);
}

/** Read and validate a policy file; unreadable files are a PolicyError too. */
export function loadPolicyFile(path: string): Policy {
  let text: string;
  try {
    if (statSync(path).size > MAX_POLICY_BYTES) {
      throw new PolicyError(basename(path), [
        { path: '(file)', message: `larger than ${MAX_POLICY_BYTES / 1024 / 1024} MiB` },
      ]);
    }
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof PolicyError) throw err;
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new PolicyError(path, [{ path: '(file)', message: `cannot read the policy file (${reason})` }]);
  }
  return parsePolicy(text, basename(path));
}

/** Accept what `startTestbed({ policy })` accepts: a file path, a validated Policy, or a plain object. */
export function resolvePolicy(input: string | Policy | Record<string, unknown>): Policy {
  if (typeof input === 'string') return loadPolicyFile(input);
  if (isValidatedPolicy(input)) return input;
  return policyFromObject(input);
}

const REGION = /^[A-Z]{2}$/;
const TOP_KEYS = ['regions', 'background', 'outages', 'rules'] as const;
const RULE_KEYS = [
  'id',
  'match',
  'action',
  'scope',
  'probability',
  'active',
  'delay_ms',
  'notice',
  'replace_with',
] as const;
const ACTIONS: readonly RuleAction[] = ['drop', 'delay', 'notice', 'replace'];
/** Fields that belong to one action only. */
const ACTION_FIELD: Record<string, RuleAction> = {
  delay_ms: 'delay',
  notice: 'notice',
  replace_with: 'replace',
};

function validateDocument(doc: Document, source: string, lineCounter?: LineCounter): Policy {
  const r = new Reader(doc, lineCounter);
  const top = r.map(doc.contents, '', TOP_KEYS, ['regions']);
  const regions = top ? readRegions(r, top.get('regions')) : [];
  const background = readBackground(r, top?.get('background'));
  const outages = readOutages(r, top?.get('outages'));
  const rules = readRules(r, top?.get('rules'), regions);
  if (r.issues.length > 0) throw new PolicyError(source, r.issues);
  const policy: Policy = { regions, background, outages, rules, source };
  validated.add(policy);
  return policy;
}

function readRegions(r: Reader, node: unknown): string[] {
  const items = r.seq(node, 'regions', 'two-letter region codes');
  const out: string[] = [];
  if (!items) return out;
  if (items.length === 0) r.report('regions', r.resolve(node), 'must list at least one region');
  items.forEach((item, i) => {
    const path = join('regions', i);
    const code = r.string(item, path);
    if (code === undefined) return;
    if (!REGION.test(code))
      r.report(path, r.resolve(item), `must be an upper-case two-letter code like CN, got "${code}"`);
    else if (out.includes(code)) r.report(path, r.resolve(item), `duplicate region "${code}"`);
    else out.push(code);
  });
  return out;
}

function readBackground(r: Reader, node: unknown): Policy['background'] {
  const out = { loss: 0, latencyMs: { median: 0, p95: 0 } };
  if (node === undefined || r.scalarValue(node) === null) return out;
  const m = r.map(node, 'background', ['loss', 'latency_ms']);
  if (!m) return out;
  if (m.has('loss')) out.loss = r.number(m.get('loss'), 'background.loss', { min: 0, max: 1 }) ?? 0;
  if (m.has('latency_ms')) {
    const lat = r.map(m.get('latency_ms'), 'background.latency_ms', ['median', 'p95'], ['median', 'p95']);
    if (lat) {
      const median = r.number(lat.get('median'), 'background.latency_ms.median', { min: 0 });
      const p95 = r.number(lat.get('p95'), 'background.latency_ms.p95', { min: 0 });
      if (median !== undefined && p95 !== undefined) {
        if (p95 < median) {
          r.report('background.latency_ms.p95', r.resolve(lat.get('p95')), `must be >= median (${median})`);
        } else if (median === 0 && p95 > 0) {
          r.report('background.latency_ms.median', r.resolve(lat.get('median')), 'must be > 0 when p95 > 0');
        } else {
          out.latencyMs = { median, p95 };
        }
      }
    }
  }
  return out;
}

function readWindow(r: Reader, node: unknown, path: string, requireBoth: boolean): TimeWindow | undefined {
  const m = r.map(node, path, ['from', 'to'], requireBoth ? ['from', 'to'] : []);
  if (!m) return undefined;
  if (!m.has('from') && !m.has('to')) {
    r.report(path, r.resolve(node), 'needs "from", "to" or both');
    return undefined;
  }
  const from = m.has('from') ? r.dateTime(m.get('from'), join(path, 'from')) : Number.NEGATIVE_INFINITY;
  const to = m.has('to') ? r.dateTime(m.get('to'), join(path, 'to')) : Number.POSITIVE_INFINITY;
  if (from === undefined || to === undefined) return undefined;
  if (!(from < to)) {
    r.report(join(path, 'to'), r.resolve(m.get('to')), 'must be later than "from"');
    return undefined;
  }
  return { from, to };
}

function readOutages(r: Reader, node: unknown): TimeWindow[] {
  if (node === undefined || r.scalarValue(node) === null) return [];
  const items = r.seq(node, 'outages', '{ from, to } windows') ?? [];
  const out: TimeWindow[] = [];
  items.forEach((item, i) => {
    const w = readWindow(r, item, join('outages', i), true);
    if (w) out.push(w);
  });
  return out;
}

function readRules(r: Reader, node: unknown, regions: readonly string[]): Rule[] {
  if (node === undefined || r.scalarValue(node) === null) return [];
  const items = r.seq(node, 'rules', 'rules') ?? [];
  const out: Rule[] = [];
  const ids = new Set<string>();
  items.forEach((item, i) => {
    const path = join('rules', i);
    const rule = readRule(r, item, path, regions);
    const node = r.resolve(item);
    const idNode = isMap(node) ? node.get('id', true) : undefined;
    const id = r.scalarValue(idNode);
    if (typeof id === 'string') {
      if (ids.has(id)) r.report(join(path, 'id'), idNode, `duplicate rule id "${id}"`);
      ids.add(id);
    }
    if (rule) out.push(rule);
  });
  return out;
}

function readRule(r: Reader, node: unknown, path: string, regions: readonly string[]): Rule | undefined {
  const m = r.map(node, path, RULE_KEYS, ['id', 'match', 'action']);
  if (!m) return undefined;
  const before = r.issues.length;
  const id = m.has('id') ? r.string(m.get('id'), join(path, 'id')) : undefined;
  const match = m.has('match') ? readMatch(r, m.get('match'), join(path, 'match')) : undefined;
  const action = m.has('action') ? r.oneOf(m.get('action'), join(path, 'action'), ACTIONS) : undefined;
  const scope = readScope(r, m.get('scope'), join(path, 'scope'), regions);
  const probability = m.has('probability')
    ? r.number(m.get('probability'), join(path, 'probability'), { min: 0, max: 1 })
    : 1;
  const active = m.has('active') ? readWindow(r, m.get('active'), join(path, 'active'), false) : undefined;

  for (const [field, owner] of Object.entries(ACTION_FIELD)) {
    if (action && m.has(field) && owner !== action) {
      r.report(join(path, field), r.resolve(m.get(field)), `only allowed when action is ${owner}`);
    }
  }
  if (action && action !== 'drop') {
    const field = Object.keys(ACTION_FIELD).find((f) => ACTION_FIELD[f] === action) ?? '';
    if (!m.has(field)) r.report(path, r.resolve(node), `action ${action} needs "${field}"`);
  }
  if (r.issues.length > before || !id || !match || !action || probability === undefined || !scope)
    return undefined;

  const base = { id, match, scope, probability, ...(active ? { active } : {}) };
  switch (action) {
    case 'drop':
      return { ...base, action };
    case 'delay': {
      const delayMs = r.number(m.get('delay_ms'), join(path, 'delay_ms'), { min: 0, integer: true });
      return delayMs === undefined ? undefined : { ...base, action, delayMs };
    }
    case 'notice': {
      const notice = r.string(m.get('notice'), join(path, 'notice'));
      return notice === undefined ? undefined : { ...base, action, notice };
    }
    case 'replace': {
      const replaceWith = r.string(m.get('replace_with'), join(path, 'replace_with'), { allowEmpty: true });
      return replaceWith === undefined ? undefined : { ...base, action, replaceWith };
    }
  }
}

function readMatch(r: Reader, node: unknown, path: string): TermMatch | undefined {
  const m = r.map(node, path, ['all', 'any']);
  if (!m) return undefined;
  const modes = [...m.keys()] as ('all' | 'any')[];
  const mode = modes[0];
  if (modes.length !== 1 || !mode) {
    r.report(path, r.resolve(node), 'needs exactly one of "all" (every term) or "any" (one term)');
    return undefined;
  }
  const items = r.seq(m.get(mode), join(path, mode), 'terms');
  if (!items) return undefined;
  if (items.length === 0) {
    r.report(join(path, mode), r.resolve(m.get(mode)), 'must list at least one term');
    return undefined;
  }
  const terms = items.map((item, i) => r.string(item, join(join(path, mode), i)));
  if (terms.some((t) => t === undefined)) return undefined;
  return { mode, terms: terms as string[] };
}

function readScope(
  r: Reader,
  node: unknown,
  path: string,
  regions: readonly string[],
): RuleScope | undefined {
  const scope: RuleScope = { conversation: 'any', senderRegion: 'any', recipientRegion: 'any' };
  if (node === undefined) return scope;
  const m = r.map(node, path, ['conversation', 'sender_region', 'recipient_region']);
  if (!m) return undefined;
  let ok = true;
  if (m.has('conversation')) {
    const c = r.oneOf(m.get('conversation'), join(path, 'conversation'), ['direct', 'group', 'any'] as const);
    if (c) scope.conversation = c;
    else ok = false;
  }
  for (const [key, field] of [
    ['sender_region', 'senderRegion'],
    ['recipient_region', 'recipientRegion'],
  ] as const) {
    if (!m.has(key)) continue;
    const v = readRegionScope(r, m.get(key), join(path, key), regions);
    if (v) scope[field] = v;
    else ok = false;
  }
  return ok ? scope : undefined;
}

function readRegionScope(
  r: Reader,
  node: unknown,
  path: string,
  regions: readonly string[],
): RegionScope | undefined {
  if (r.scalarValue(node) === 'any') return 'any';
  const items = r.seq(node, path, 'regions from "regions" (or the word any)');
  if (!items) return undefined;
  if (items.length === 0) {
    r.report(path, r.resolve(node), 'must list at least one region (or be "any")');
    return undefined;
  }
  const out: string[] = [];
  let ok = true;
  items.forEach((item, i) => {
    const code = r.string(item, join(path, i));
    if (code === undefined) ok = false;
    else if (!regions.includes(code)) {
      r.report(
        join(path, i),
        r.resolve(item),
        `unknown region "${code}"; the policy's regions are ${regions.join(', ')}`,
      );
      ok = false;
    } else out.push(code);
  });
  return ok ? out : undefined;
}
