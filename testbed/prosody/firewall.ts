/**
 * A mod_firewall script (Prosody 0.12 + prosody-modules) generated from a testbed
 * policy (design.md, "Testbed policy format"), so a real XMPP server censors the way
 * the policy says. What maps onto XMPP, and how:
 *
 *   drop    → `DROP.` on `::deliver`, which runs once per delivery to a local user,
 *             including every occupant's copy of a MUC message: per recipient.
 *   notice  → `BOUNCE=policy-violation (NOTICE)` on `::preroute`: the sender gets an
 *             error stanza with the notice text and nobody receives the message.
 *   match   → `all`: several `INSPECT: body#/=TERM` lines in one rule (ANDed);
 *             `any`: one rule per term (rules are ORed by being separate).
 *   scope.conversation    direct → `TYPE: chat,normal`; group → `TYPE: groupchat`.
 *   scope.recipient_region → `TO GROUP: XX` (mod_groups, one group per region); a
 *             list of regions becomes one rule per region.
 *   scope.sender_region   direct chats → `FROM GROUP: XX`. In `::deliver` a MUC copy
 *             comes from `room@conference/nick`, so for group chats the real sender is
 *             looked up in the room's occupant table (a `$(…)` Lua expression) and
 *             checked against a per-region list file (`CHECK LIST`). In `::preroute`
 *             the stanza still comes from the sender, so `FROM GROUP` works for both.
 *
 * Refused with a FirewallPolicyError naming each rule (never silently ignored): the
 * actions `delay` and `replace`; `probability` other than 1; `active` windows;
 * `background.loss` / `background.latency_ms` other than 0; `outages`; a `notice` with
 * `recipient_region` that can apply to group chats (a bounce is decided before the
 * message fans out to occupants, so it cannot depend on who is in the room); terms or
 * notice texts that the script format cannot carry (line breaks, leading or trailing
 * whitespace, a trailing backslash).
 *
 * Matching differs from the testbed: INSPECT is a literal, case-sensitive substring
 * of the message body, without the testbed's NFKC folding, case folding or removal of
 * whitespace between CJK characters.
 *
 * Script format pitfall: every rule must be followed by a blank line, or the parser
 * silently swallows the next line (and with it a condition of the next rule).
 */
import type { Policy, Rule } from '../policy.ts';

export interface FirewallOptions {
  /** The MUC component's domain, e.g. `conference.localhost`. */
  mucDomain: string;
  /**
   * The file listing one region's bare JIDs, one per line (read by `%LIST … file:`).
   * Only asked for regions used as `sender_region` of rules that apply to group chats.
   */
  senderListPath: (region: string) => string;
}

export interface FirewallProblem {
  ruleId?: string;
  field: string;
  message: string;
}

export class FirewallPolicyError extends Error {
  readonly code = 'SD_ERR_TESTBED_FIREWALL';
  constructor(
    readonly source: string,
    readonly problems: readonly FirewallProblem[],
  ) {
    super(
      `policy ${source} cannot be enforced by Prosody's mod_firewall:\n${problems
        .map((p) => `  ${p.ruleId === undefined ? '' : `rule "${p.ruleId}" `}${p.field}: ${p.message}`)
        .join('\n')}`,
    );
    this.name = 'FirewallPolicyError';
  }
}

type Kind = 'direct' | 'group';
const TYPE_OF: Record<Kind, string> = { direct: 'chat,normal', group: 'groupchat' };

/** Lines of one firewall rule: conditions then actions. */
type RuleLines = { comment: string; lines: string[] };

/** Every problem that keeps the policy from being expressed as a mod_firewall script. */
export function firewallProblems(policy: Policy): FirewallProblem[] {
  const problems: FirewallProblem[] = [];
  if (policy.background.loss !== 0) {
    problems.push({
      field: 'background.loss',
      message: 'random background loss has no mod_firewall equivalent',
    });
  }
  if (policy.background.latencyMs.median !== 0 || policy.background.latencyMs.p95 !== 0) {
    problems.push({
      field: 'background.latency_ms',
      message: 'added latency has no mod_firewall equivalent',
    });
  }
  if (policy.outages.length > 0) {
    problems.push({
      field: 'outages',
      message: 'outage windows are not supported (stop the server instead)',
    });
  }
  for (const rule of policy.rules) {
    const p = (field: string, message: string) => problems.push({ ruleId: rule.id, field, message });
    if (rule.action === 'delay')
      p('action', 'delay has no mod_firewall equivalent (it can drop or bounce only)');
    if (rule.action === 'replace')
      p('action', 'replace has no mod_firewall equivalent (it can drop or bounce only)');
    if (rule.probability !== 1)
      p('probability', `only 1.0 is supported (got ${rule.probability}): DROP is not random`);
    if (rule.active) p('active', 'time windows are not supported');
    if (rule.action === 'notice') {
      if (rule.scope.recipientRegion !== 'any' && rule.scope.conversation !== 'direct') {
        p(
          'scope.recipient_region',
          'a notice (BOUNCE) is decided before a group message reaches the occupants, so it cannot depend on ' +
            'their region; set scope.conversation: direct or drop recipient_region',
        );
      }
      const bad = unsafeText(rule.notice);
      if (bad) p('notice', bad);
    }
    rule.match.terms.forEach((term, i) => {
      const bad = unsafeText(term);
      if (bad) p(`match.${rule.match.mode}[${i}]`, bad);
    });
  }
  return problems;
}

/** Why a string cannot travel in one line of a firewall script, or undefined if it can. */
function unsafeText(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f\u2028\u2029]/.test(s))
    return 'must not contain line breaks or control characters';
  if (/^[ \t\v\f]|[ \t\v\f]$/.test(s))
    return 'must not start or end with whitespace (script lines are trimmed)';
  if (s.endsWith('\\')) return 'must not end with a backslash (it continues the script line)';
  return undefined;
}

/** Throws FirewallPolicyError listing every unsupported feature; otherwise returns the script text. */
export function generateFirewallScript(policy: Policy, options: FirewallOptions): string {
  const problems = firewallProblems(policy);
  if (!/^[a-z0-9.-]+$/i.test(options.mucDomain)) {
    problems.push({ field: 'mucDomain', message: `not a plain domain: ${options.mucDomain}` });
  }
  if (problems.length > 0) throw new FirewallPolicyError(policy.source, problems);

  const listRegions = new Set<string>();
  const preroute: RuleLines[] = [];
  const deliver: RuleLines[] = [];
  for (const rule of policy.rules) {
    if (rule.action === 'notice') preroute.push(...noticeRules(rule));
    else if (rule.action === 'drop') deliver.push(...dropRules(rule, options.mucDomain, listRegions));
  }

  const out: string[] = [
    `# Generated by silentdrop testbed/prosody from policy ${comment(policy.source)}. Do not edit.`,
    '# INSPECT matches a literal, case-sensitive substring of <body> (no NFKC or case folding).',
    '',
  ];
  for (const region of [...listRegions].sort()) {
    const path = options.senderListPath(region);
    if (/\s/.test(path)) throw new Error(`sender list path must not contain whitespace: ${path}`);
    out.push(`%LIST ${senderList(region)}: file:${path}`, '');
  }
  for (const [chain, rules] of [
    ['preroute', preroute],
    ['deliver', deliver],
  ] as const) {
    if (rules.length === 0) continue;
    out.push(`::${chain}`, '');
    for (const r of rules) out.push(`# ${r.comment}`, ...r.lines, '');
  }
  return `${out.join('\n')}\n`;
}

/** The term combinations of a rule: one list of INSPECT lines per firewall rule. */
function inspections(rule: Rule): string[][] {
  const line = (t: string) => `INSPECT: body#/=${t}`;
  return rule.match.mode === 'all' ? [rule.match.terms.map(line)] : rule.match.terms.map((t) => [line(t)]);
}

function kinds(rule: Rule): Kind[] {
  return rule.scope.conversation === 'any' ? ['direct', 'group'] : [rule.scope.conversation];
}

/** One entry per region, or one `undefined` for "any region". */
function regions(scope: readonly string[] | 'any'): (string | undefined)[] {
  return scope === 'any' ? [undefined] : [...scope];
}

function noticeRules(rule: Rule & { action: 'notice' }): RuleLines[] {
  const out: RuleLines[] = [];
  // Preroute sees the sender's own stanza, so FROM GROUP works for direct and group alike.
  const types =
    rule.scope.conversation === 'any' ? ['chat,normal,groupchat'] : [TYPE_OF[rule.scope.conversation]];
  for (const type of types)
    for (const terms of inspections(rule))
      for (const from of regions(rule.scope.senderRegion))
        for (const to of regions(rule.scope.recipientRegion)) {
          out.push({
            comment: `rule ${comment(rule.id)}: notice${describe(from, to, type)}`,
            lines: [
              'KIND: message',
              `TYPE: ${type}`,
              ...terms,
              ...(from ? [`FROM GROUP: ${from}`] : []),
              ...(to ? [`TO GROUP: ${to}`] : []),
              `LOG=[info] silentdrop firewall: rule ${logSafe(rule.id)} bounced a message from $<@from> to $<@to>`,
              `BOUNCE=policy-violation (${rule.notice})`,
            ],
          });
        }
  return out;
}

function dropRules(
  rule: Rule & { action: 'drop' },
  mucDomain: string,
  listRegions: Set<string>,
): RuleLines[] {
  const out: RuleLines[] = [];
  // Without a sender scope one TYPE line can cover both kinds; with one, direct and group differ.
  const kindSets: Kind[][] =
    rule.scope.senderRegion === 'any' && rule.scope.conversation === 'any'
      ? [['direct', 'group']]
      : kinds(rule).map((k) => [k]);
  for (const ks of kindSets)
    for (const terms of inspections(rule))
      for (const from of regions(rule.scope.senderRegion))
        for (const to of regions(rule.scope.recipientRegion)) {
          const type = ks.map((k) => TYPE_OF[k]).join(',');
          const senderLines: string[] = [];
          if (from && ks[0] === 'direct') senderLines.push(`FROM GROUP: ${from}`);
          if (from && ks[0] === 'group') {
            listRegions.add(from);
            senderLines.push(`CHECK LIST: ${senderList(from)} contains $(${mucRealSender(mucDomain)})`);
          }
          out.push({
            comment: `rule ${comment(rule.id)}: drop${describe(from, to, type)}`,
            lines: [
              'KIND: message',
              `TYPE: ${type}`,
              ...terms,
              ...(to ? [`TO GROUP: ${to}`] : []),
              ...senderLines,
              `LOG=[info] silentdrop firewall: rule ${logSafe(rule.id)} dropped a message from $<@from> to $<@to>`,
              'DROP.',
            ],
          });
        }
  return out;
}

/**
 * A Lua expression (one line, balanced parentheses, for `$(…)`) giving the bare real
 * JID of the occupant a MUC copy comes from (`room@muc/nick`), or "" if there is none.
 */
export function mucRealSender(mucDomain: string): string {
  return (
    '(function() local from = stanza.attr.from or ""; ' +
    `local host = prosody.hosts["${mucDomain}"]; ` +
    'local muc = host and host.modules and host.modules.muc; ' +
    'local room = muc and muc.get_room_from_jid(require("util.jid").bare(from)); ' +
    'local occupant = room and room:get_occupant_by_nick(from); ' +
    'return occupant and occupant.bare_jid or "" end)()'
  );
}

export function senderList(region: string): string {
  return `sd_sender_${region}`;
}

function describe(from: string | undefined, to: string | undefined, type: string): string {
  return ` [type ${type}${from ? `, sender ${from}` : ''}${to ? `, recipient ${to}` : ''}]`;
}

/** For a `#` comment line: no line breaks. */
function comment(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  return s.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, ' ');
}

/** For a LOG action (its text may hold `$(code)`): only plain id characters. */
function logSafe(s: string): string {
  return s.replace(/[^\w.-]/g, '_');
}
