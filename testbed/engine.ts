/**
 * The censorship engine: given the policy, one outgoing message and its recipients,
 * decide what the sender sees and what each recipient gets. Pure apart from the
 * random draws, so the server (and tests) own time and state.
 *
 * Precedence (also in README.md):
 * 1. `notice` is decided once per message, before fan-out: the first notice rule in
 *    document order that applies rejects the message for everyone (sender gets the
 *    notice, nobody receives). A notice rule's `recipient_region` means "fires when at
 *    least one recipient is registered in one of these regions".
 * 2. Otherwise each recipient independently gets the first applicable non-notice rule
 *    in document order (`drop`, `delay` or `replace`); later rules are not consulted.
 * A rule applies when its active window contains the send time, its scopes hold, its
 * match fires on the text, and its probability draw succeeds. A failed draw means the
 * rule does not apply and evaluation moves to the next rule.
 * 3. Then, per recipient not dropped: background loss, then background latency (plus
 *    `delay_ms` for a delay rule).
 * 4. Outages: a message sent during an outage is lost for every recipient, and a
 *    delivery that falls due during an outage is lost (not deferred). The sender still
 *    sees "sent": the platform accepted it, then lost it.
 */
import { matchTerms, replaceHits, type TermHit } from './matching.ts';
import type { ConversationKind, Policy, RegionScope, Rule, TimeWindow } from './policy.ts';
import { type Rng, sampleLatency } from './random.ts';

export interface Participant {
  handle: string;
  region: string;
}

export interface OutgoingMessage {
  text: string;
  conversationKind: ConversationKind;
  sender: Participant;
  /** Every member except the sender. */
  recipients: readonly Participant[];
  /** Send time, epoch ms. */
  at: number;
}

export type LossReason = 'rule' | 'background_loss' | 'outage';

export type Fate =
  | { kind: 'deliver'; at: number; text: string; ruleId?: string }
  | { kind: 'lost'; reason: LossReason; ruleId?: string };

export type Decision =
  | { kind: 'rejected'; ruleId: string; notice: string }
  | { kind: 'accepted'; recipients: Array<{ recipient: Participant; fate: Fate }> };

const inWindow = (w: TimeWindow, t: number): boolean => t >= w.from && t < w.to;
const inScope = (scope: RegionScope, region: string): boolean => scope === 'any' || scope.includes(region);

export function inOutage(policy: Policy, t: number): boolean {
  return policy.outages.some((w) => inWindow(w, t));
}

/** Conditions that do not depend on the recipient: window, conversation kind, sender region. */
function appliesToMessage(rule: Rule, msg: OutgoingMessage): boolean {
  if (rule.active && !inWindow(rule.active, msg.at)) return false;
  if (rule.scope.conversation !== 'any' && rule.scope.conversation !== msg.conversationKind) return false;
  return inScope(rule.scope.senderRegion, msg.sender.region);
}

function draw(probability: number, rng: Rng): boolean {
  if (probability >= 1) return true;
  if (probability <= 0) return false;
  return rng() < probability;
}

export function decide(policy: Policy, msg: OutgoingMessage, rng: Rng): Decision {
  const hitCache = new Map<Rule, TermHit[] | undefined>();
  const hits = (rule: Rule): TermHit[] | undefined => {
    if (!hitCache.has(rule)) hitCache.set(rule, matchTerms(msg.text, rule.match));
    return hitCache.get(rule);
  };
  const candidates = policy.rules.filter((rule) => appliesToMessage(rule, msg));

  for (const rule of candidates) {
    if (rule.action !== 'notice') continue;
    const reachesScope =
      rule.scope.recipientRegion === 'any' ||
      msg.recipients.some((p) => inScope(rule.scope.recipientRegion, p.region));
    if (reachesScope && hits(rule) && draw(rule.probability, rng)) {
      return { kind: 'rejected', ruleId: rule.id, notice: rule.notice };
    }
  }

  const sentInOutage = inOutage(policy, msg.at);
  const recipients = msg.recipients.map((recipient) => {
    const fate = decideForRecipient(policy, msg, recipient, candidates, hits, rng, sentInOutage);
    return { recipient, fate };
  });
  return { kind: 'accepted', recipients };
}

function decideForRecipient(
  policy: Policy,
  msg: OutgoingMessage,
  recipient: Participant,
  candidates: readonly Rule[],
  hits: (rule: Rule) => TermHit[] | undefined,
  rng: Rng,
  sentInOutage: boolean,
): Fate {
  let text = msg.text;
  let extraDelay = 0;
  let ruleId: string | undefined;
  for (const rule of candidates) {
    if (rule.action === 'notice') continue;
    if (!inScope(rule.scope.recipientRegion, recipient.region)) continue;
    const found = hits(rule);
    if (!found || !draw(rule.probability, rng)) continue;
    ruleId = rule.id;
    if (rule.action === 'drop') return { kind: 'lost', reason: 'rule', ruleId };
    if (rule.action === 'delay') extraDelay = rule.delayMs;
    if (rule.action === 'replace') text = replaceHits(msg.text, found, rule.replaceWith);
    break;
  }
  const withRule = ruleId ? { ruleId } : {};
  if (sentInOutage) return { kind: 'lost', reason: 'outage', ...withRule };
  if (policy.background.loss > 0 && rng() < policy.background.loss) {
    return { kind: 'lost', reason: 'background_loss', ...withRule };
  }
  const at = msg.at + extraDelay + sampleLatency(policy.background.latencyMs, rng);
  if (inOutage(policy, at)) return { kind: 'lost', reason: 'outage', ...withRule };
  return { kind: 'deliver', at, text, ...withRule };
}
