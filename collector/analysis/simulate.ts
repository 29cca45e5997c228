/**
 * A simulated censor for tests and benchmarks. It knows nothing about the algorithms it is used
 * to test: it only decides, per message and recipient, what happens to it — like the testbed's
 * policy (rules of required terms, scopes, background loss, outages, latency).
 */

import { seededRandom } from './prng.ts';

export { seededRandom } from './prng.ts';

export type SimAction = 'drop' | 'delay' | 'notice' | 'replace';
export type Conversation = 'direct' | 'group';

export interface SimRule {
  id: string;
  /** Every term must be present (substring after normalisation). */
  all: readonly string[];
  action: SimAction;
  probability?: number;
  delayMs?: number;
  scope?: {
    conversation?: Conversation;
    senderRegion?: readonly string[];
    recipientRegion?: readonly string[];
  };
  /** Active window in ms since epoch, [from, to). */
  active?: { from: number; to: number };
}

export interface CensorConfig {
  rules: readonly SimRule[];
  backgroundLoss: number;
  latency?: { medianMs: number; p95Ms: number };
  outages?: readonly { from: number; to: number }[];
}

export interface SimMessage {
  text: string;
  conversation: Conversation;
  senderRegion: string;
  recipientRegion: string;
  /** ms since epoch */
  time: number;
}

export type SimStatus = 'delivered' | 'missing' | 'rejected' | 'altered';

export interface SimDelivery {
  status: SimStatus;
  latencyMs?: number;
  ruleId?: string;
}

const CJK = '\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}\\p{Script=Hangul}';
const CJK_GAP = new RegExp(`(?<=[${CJK}])\\s+(?=[${CJK}])`, 'gu');

/** NFKC, lower case, whitespace between CJK characters removed (the testbed's matching rule). */
export function normaliseForMatch(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(CJK_GAP, '');
}

export function ruleMatches(rule: SimRule, text: string): boolean {
  const hay = normaliseForMatch(text);
  return rule.all.every((t) => hay.includes(normaliseForMatch(t)));
}

function inScope(rule: SimRule, m: SimMessage): boolean {
  const s = rule.scope;
  if (rule.active && (m.time < rule.active.from || m.time >= rule.active.to)) return false;
  if (!s) return true;
  if (s.conversation && s.conversation !== m.conversation) return false;
  if (s.senderRegion && !s.senderRegion.includes(m.senderRegion)) return false;
  if (s.recipientRegion && !s.recipientRegion.includes(m.recipientRegion)) return false;
  return true;
}

export interface Censor {
  deliver(message: SimMessage): SimDelivery;
  /** Ground truth without randomness: the first rule that would act on this message, if any. */
  wouldAct(message: SimMessage): SimRule | undefined;
}

export function createCensor(config: CensorConfig, seed: number): Censor {
  const rand = seededRandom(seed);
  const lat = config.latency ?? { medianMs: 300, p95Ms: 1500 };
  // log-normal latency with the given median and p95
  const mu = Math.log(lat.medianMs);
  const sigma = Math.log(lat.p95Ms / lat.medianMs) / 1.6448536;
  const gauss = () => {
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const wouldAct = (m: SimMessage) => config.rules.find((r) => inScope(r, m) && ruleMatches(r, m.text));
  return {
    wouldAct,
    deliver(m) {
      if (config.outages?.some((o) => m.time >= o.from && m.time < o.to)) return { status: 'missing' };
      const rule = wouldAct(m);
      const fires = rule !== undefined && rand() < (rule.probability ?? 1);
      if (fires && rule.action === 'notice') return { status: 'rejected', ruleId: rule.id };
      if (rand() < config.backgroundLoss) return { status: 'missing' };
      const latencyMs = Math.exp(mu + sigma * gauss());
      if (!fires || !rule) return { status: 'delivered', latencyMs };
      switch (rule.action) {
        case 'drop':
          return { status: 'missing', ruleId: rule.id };
        case 'replace':
          return { status: 'altered', latencyMs, ruleId: rule.id };
        default:
          return { status: 'delivered', latencyMs: latencyMs + (rule.delayMs ?? 20_000), ruleId: rule.id };
      }
    },
  };
}
