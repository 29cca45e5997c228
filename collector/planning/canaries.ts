/**
 * Round plans: which canaries to send in one round of a campaign, with what text, from
 * whom, to which conversation, and when. Pure: the same input and seed give the same plan.
 */
import type { ConversationKind } from '../../protocol/common.ts';
import { makeControlTerms } from './controls.ts';
import { findTriggers, type TriggerIndex, triggerIndex } from './matching.ts';
import { createRng, pick, RNG_ALGORITHM, type Rng, randomInt, randomUuid, shuffled } from './rng.ts';
import { buildCanaryText, type CanaryTemplate, TEMPLATE_VERSION, TEMPLATES } from './templates.ts';
import { normalizeTerm, termSetKey } from './terms.ts';

export {
  buildCanaryText,
  type CanaryTemplate,
  checkTemplateSafety,
  type SafetyProblem,
  TEMPLATE_VERSION,
  TEMPLATES,
} from './templates.ts';

const NONCE_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** `sd` + 12 of [a-z0-9]; with `avoid`, redrawn until it contains no tested term (e.g. "xi", "8964"). */
export function newNonce(rng: Rng, avoid?: TriggerIndex): string {
  for (let attempt = 0; attempt < 1000; attempt++) {
    let nonce = 'sd';
    for (let i = 0; i < 12; i++) nonce += NONCE_ALPHABET[randomInt(rng, NONCE_ALPHABET.length)];
    if (avoid === undefined || findTriggers(nonce, avoid).length === 0) return nonce;
  }
  throw new Error('could not draw a nonce free of tested terms');
}

export interface PlanMember {
  handle: string;
  /** Registration region, ISO 3166-1 alpha-2. */
  region: string;
}

export interface PlanConversation {
  ref: string;
  kind: ConversationKind;
  platform: string;
  members: readonly PlanMember[];
}

export interface SenderRule {
  /** Only these handles may send (e.g. active accounts of probes that check in). Default: every member. */
  eligible?: readonly string[];
  /** Senders per registration region present among eligible members (default 1). */
  perRegion?: number;
}

export interface PlanRoundInput {
  campaignId: string;
  /** Start of the round's send window (ISO 8601 or Date). */
  roundAt: string | Date;
  /** Saved with the plan; give every round its own (see roundSeed). */
  seed: string | number;
  termSets: readonly (readonly string[])[];
  conversations: readonly PlanConversation[];
  senders?: SenderRule;
  /** Sends are spread over [roundAt, roundAt + spreadSeconds). */
  spreadSeconds: number;
  /** Each canary's deadline is its sendAt + deadlineSeconds. */
  deadlineSeconds: number;
  /** Default TEMPLATES. */
  templates?: readonly CanaryTemplate[];
  /** Further terms no control, padding or nonce may contain (e.g. the campaign's whole list). */
  avoid?: Iterable<string>;
}

export type CanaryKind = 'test' | 'control';

export interface PlannedCanary {
  canaryId: string;
  /** Shared by a test and its control. */
  pairId: string;
  kind: CanaryKind;
  campaignId: string;
  /** The terms this canary carries (benign ones for a control). */
  terms: string[];
  /** The tested term set of the pair, and its termSetKey: the same on test and control. */
  testTerms: string[];
  termSetKey: string;
  text: string;
  nonce: string;
  sender: PlanMember;
  /** Every other member of the conversation: the expected recipients. */
  recipients: PlanMember[];
  conversation: { ref: string; kind: ConversationKind; platform: string };
  templateId: string;
  templateVersion: number;
  /** Position in the round's randomised send order (0-based). */
  order: number;
  sendAt: string;
  deadlineAt: string;
}

export interface RoundPlan {
  campaignId: string;
  roundAt: string;
  seed: string;
  rng: typeof RNG_ALGORITHM;
  templateVersion: number;
  spreadSeconds: number;
  deadlineSeconds: number;
  canaries: PlannedCanary[];
  /** Conversations that could not be used (fewer than two members, no eligible sender). */
  skipped: { conversation: string; reason: string }[];
}

/** A per-round seed that every stateless collector derives alike. */
export function roundSeed(campaignId: string, roundAt: string | Date): string {
  return `${campaignId}@${new Date(roundAt).toISOString()}`;
}

/** Senders for one conversation: per region present among eligible members, `perRegion` at random. */
function chooseSenders(conv: PlanConversation, rule: SenderRule, rng: Rng): PlanMember[] {
  const eligible = rule.eligible ? new Set(rule.eligible) : undefined;
  const candidates = conv.members.filter((m) => eligible === undefined || eligible.has(m.handle));
  const regions = [...new Set(candidates.map((m) => m.region))].sort();
  const chosen: PlanMember[] = [];
  for (const region of regions) {
    const pool = shuffled(
      rng,
      candidates.filter((m) => m.region === region),
    );
    chosen.push(...pool.slice(0, Math.max(1, rule.perRegion ?? 1)));
  }
  return chosen;
}

function validate(input: PlanRoundInput): number {
  const start = new Date(input.roundAt).getTime();
  if (!Number.isFinite(start)) throw new RangeError(`roundAt is not a date: ${String(input.roundAt)}`);
  if (!(input.spreadSeconds >= 0)) throw new RangeError('spreadSeconds must be >= 0');
  if (!(input.deadlineSeconds > 0)) throw new RangeError('deadlineSeconds must be > 0');
  for (const set of input.termSets) {
    if (set.length === 0 || set.some((t) => normalizeTerm(t) === '')) {
      throw new RangeError('every term set needs at least one non-empty term');
    }
  }
  return start;
}

type Draft = Omit<PlannedCanary, 'order' | 'sendAt' | 'deadlineAt'>;

/**
 * Plans one round: for each term set × conversation × chosen sender, a test and a
 * matched control with the same template, padding, sender and conversation; then the
 * whole round in a seeded random order, spread over the send window.
 */
export function planRound(input: PlanRoundInput): RoundPlan {
  const start = validate(input);
  const seed = String(input.seed);
  const rng = createRng(seed);
  const templates = input.templates ?? TEMPLATES;
  if (templates.length === 0) throw new RangeError('no templates');
  const termSets = input.termSets.map((s) => [...new Set(s.map(normalizeTerm))]);
  const avoid = triggerIndex([...termSets.flat(), ...(input.avoid ?? [])]);
  const usedNonces = new Set<string>();
  const nonce = () => {
    let n = newNonce(rng, avoid);
    while (usedNonces.has(n)) n = newNonce(rng, avoid);
    usedNonces.add(n);
    return n;
  };

  const drafts: Draft[] = [];
  const skipped: RoundPlan['skipped'] = [];
  for (const conv of input.conversations) {
    if (conv.members.length < 2) {
      skipped.push({ conversation: conv.ref, reason: 'fewer than two members' });
      continue;
    }
    const conversation = { ref: conv.ref, kind: conv.kind, platform: conv.platform };
    for (const testTerms of termSets) {
      const senders = chooseSenders(conv, input.senders ?? {}, rng);
      if (senders.length === 0) {
        skipped.push({ conversation: conv.ref, reason: 'no eligible sender' });
        break;
      }
      for (const sender of senders) {
        const template = pick(rng, templates);
        const padding = template.padding.length > 0 ? randomInt(rng, template.padding.length) : 0;
        const testNonce = nonce();
        const controlNonce = nonce();
        let controlTerms: string[] = [];
        let controlText = '';
        for (let attempt = 0; ; attempt++) {
          controlTerms = makeControlTerms(testTerms, rng, { avoid });
          controlText = buildCanaryText(template, controlTerms, controlNonce, { padding });
          if (findTriggers(controlText, avoid).length === 0) break;
          if (attempt >= 50) throw new Error(`no safe control text for ${termSetKey(testTerms)}`);
        }
        const pairId = randomUuid(rng);
        const common = {
          pairId,
          campaignId: input.campaignId,
          testTerms,
          termSetKey: termSetKey(testTerms),
          sender,
          recipients: conv.members.filter((m) => m.handle !== sender.handle),
          conversation,
          templateId: template.id,
          templateVersion: template.version,
        };
        drafts.push({
          ...common,
          canaryId: randomUuid(rng),
          kind: 'test',
          terms: testTerms,
          nonce: testNonce,
          text: buildCanaryText(template, testTerms, testNonce, { padding }),
        });
        drafts.push({
          ...common,
          canaryId: randomUuid(rng),
          kind: 'control',
          terms: controlTerms,
          nonce: controlNonce,
          text: controlText,
        });
      }
    }
  }

  // Randomised order; slot i of n covers [i/n, (i+1)/n) of the window, with a random point inside it.
  const ordered = shuffled(rng, drafts);
  const spreadMs = input.spreadSeconds * 1000;
  const canaries = ordered.map((d, order): PlannedCanary => {
    const offset = Math.floor(((order + rng.next()) / ordered.length) * spreadMs);
    const sendAt = start + Math.min(offset, Math.max(0, spreadMs - 1));
    return {
      ...d,
      order,
      sendAt: new Date(sendAt).toISOString(),
      deadlineAt: new Date(sendAt + input.deadlineSeconds * 1000).toISOString(),
    };
  });

  return {
    campaignId: input.campaignId,
    roundAt: new Date(start).toISOString(),
    seed,
    rng: RNG_ALGORITHM,
    templateVersion: TEMPLATE_VERSION,
    spreadSeconds: input.spreadSeconds,
    deadlineSeconds: input.deadlineSeconds,
    canaries,
    skipped,
  };
}
