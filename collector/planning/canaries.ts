/**
 * Round plans: which canaries to send in one round of a campaign, with what text, from
 * whom, to which conversation, and when. Pure: the same input and seed give the same plan.
 */
import type { ConversationKind } from '../../protocol/common.ts';
import { GENERATED_NONCE_FORMS, makeNonce } from '../../protocol/nonce.ts';
import { ControlError, makeControlTerms } from './controls.ts';
import { asTriggerIndex, findTriggers, hasTerm, type TriggerIndex, triggerIndex } from './matching.ts';
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

/**
 * A nonce of `form` (default: a form drawn per attempt) in one of the shapes protocol/nonce.ts
 * defines; with `avoid`, redrawn until it contains no tested term (e.g. "xi", "8964").
 */
export function newNonce(rng: Rng, avoid?: TriggerIndex, form?: GeneratedNonceForm): string {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const f = form ?? pick(rng, GENERATED_NONCE_FORMS);
    const nonce = makeNonce(f, (n) => randomInt(rng, n));
    if (avoid === undefined || findTriggers(nonce, avoid).length === 0) return nonce;
  }
  throw new Error('could not draw a nonce free of tested terms');
}

type GeneratedNonceForm = (typeof GENERATED_NONCE_FORMS)[number];

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
  /**
   * Further terms no control, padding or nonce may contain (e.g. the campaign's whole list),
   * or the same built once with `avoidList`.
   */
  avoid?: Iterable<string> | TriggerIndex;
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
  /**
   * What could not be planned: conversations (fewer than two members, no eligible sender)
   * and term sets (`termSet` set; no nonce or no control text free of tested terms). The
   * rest of the round is planned without them.
   */
  skipped: { conversation: string; reason: string; termSet?: string[] }[];
}

/** Answers of `nonceAvoidable`, which planning asks for every listed term of every plan. */
const avoidable = new Map<string, boolean>();
/** Bounds the memo; a campaign's list is a few thousand terms. */
const AVOIDABLE_MEMO = 100_000;

/**
 * Whether a nonce free of `term` can be drawn at all (a term such as "s" or "sd" is in every
 * nonce). A pure function of the term (its own generator, seeded by the term), so the round's
 * random stream is unchanged and the answer is kept.
 */
function nonceAvoidable(term: string): boolean {
  const known = avoidable.get(term);
  if (known !== undefined) return known;
  let ok = true;
  try {
    newNonce(createRng(`nonce-check:${term}`), triggerIndex([term]));
  } catch {
    ok = false;
  }
  if (avoidable.size >= AVOIDABLE_MEMO) avoidable.clear();
  avoidable.set(term, ok);
  return ok;
}

/**
 * A campaign's list as planning avoids it (`PlanRoundInput.avoid`): normalised, without the
 * terms no nonce can avoid. Build it once for many plans of the same list (a follow-up step
 * plans one per message); a plan built from it equals one given the terms themselves.
 */
export function avoidList(terms: Iterable<string>): TriggerIndex {
  return triggerIndex([...terms].map(normalizeTerm).filter(nonceAvoidable));
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

/** A control for `testTerms` whose whole text is free of tested terms, or why there is none. */
function safeControl(
  testTerms: string[],
  template: CanaryTemplate,
  controlNonce: string,
  padding: number,
  rng: Rng,
  avoid: TriggerIndex,
): { controlTerms: string[]; controlText: string } | string {
  for (let attempt = 0; attempt <= 50; attempt++) {
    let controlTerms: string[];
    try {
      controlTerms = makeControlTerms(testTerms, rng, { avoid });
    } catch (err) {
      if (err instanceof ControlError) return err.message;
      throw err;
    }
    const controlText = buildCanaryText(template, controlTerms, controlNonce, { padding });
    if (findTriggers(controlText, avoid).length === 0) return { controlTerms, controlText };
  }
  return `no safe control text for ${termSetKey(testTerms)}`;
}

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
  const skipped: RoundPlan['skipped'] = [];
  const requested = input.termSets.map((s) => [...new Set(s.map(normalizeTerm))]);
  // A term no nonce can avoid cannot be tested; it is left out of the nonce check as well,
  // since otherwise no canary of the round could be planned.
  const termSets = requested.filter((set) => {
    const bad = set.filter((t) => !nonceAvoidable(t));
    if (bad.length === 0) return true;
    skipped.push({
      conversation: '*',
      termSet: set,
      reason: `every nonce contains the tested term ${bad.map((t) => `"${t}"`).join(', ')}`,
    });
    return false;
  });
  const listed = asTriggerIndex(input.avoid, avoidList);
  const avoid =
    listed !== undefined && termSets.every((set) => set.every((t) => hasTerm(listed, t)))
      ? listed
      : triggerIndex([...termSets.flat(), ...(listed?.keys ?? []).map(({ term }) => term)]);
  const usedNonces = new Set<string>();
  const nonce = (form: GeneratedNonceForm) => {
    let n = newNonce(rng, avoid, form);
    while (usedNonces.has(n)) n = newNonce(rng, avoid, form);
    usedNonces.add(n);
    return n;
  };
  /**
   * A test's and its control's nonces: one form drawn per pair (so the two texts keep the
   * same length and script), another form when no nonce of the drawn one avoids the terms.
   */
  const noncePair = (): [string, string] => {
    let last: unknown;
    for (const form of shuffled(rng, GENERATED_NONCE_FORMS)) {
      try {
        return [nonce(form), nonce(form)];
      } catch (err) {
        last = err;
      }
    }
    throw last;
  };

  // Template wording and padding phrases that carry a tested term are never used: neither
  // arm could be told apart from that term (e.g. padding "明天天气晴朗" when 天气 is tested).
  const usable = templates.flatMap((template) => {
    const wording = template.pattern
      .replace('{nonce}', ' ')
      .replace('{terms}', ' ')
      .replace('{padding}', ' ');
    if (findTriggers(wording, avoid).length > 0) return [];
    const paddings = template.padding.flatMap((p, i) => (findTriggers(p, avoid).length === 0 ? [i] : []));
    if (template.pattern.includes('{padding}') && paddings.length === 0) return [];
    return [{ template, paddings }];
  });
  if (usable.length === 0) throw new RangeError('every template carries a tested term');

  const drafts: Draft[] = [];
  /** Term sets (by key) whose control could not be built: skipped for the rest of the round. */
  const failed = new Set<string>();
  for (const conv of input.conversations) {
    if (conv.members.length < 2) {
      skipped.push({ conversation: conv.ref, reason: 'fewer than two members' });
      continue;
    }
    const conversation = { ref: conv.ref, kind: conv.kind, platform: conv.platform };
    for (const testTerms of termSets) {
      if (failed.has(termSetKey(testTerms))) continue;
      const senders = chooseSenders(conv, input.senders ?? {}, rng);
      if (senders.length === 0) {
        skipped.push({ conversation: conv.ref, reason: 'no eligible sender' });
        break;
      }
      for (const sender of senders) {
        const { template, paddings } = pick(rng, usable);
        const padding = paddings.length > 0 ? (paddings[randomInt(rng, paddings.length)] ?? 0) : 0;
        const [testNonce, controlNonce] = noncePair();
        const control = safeControl(testTerms, template, controlNonce, padding, rng, avoid);
        if (typeof control === 'string') {
          failed.add(termSetKey(testTerms));
          skipped.push({ conversation: conv.ref, termSet: testTerms, reason: control });
          break;
        }
        const { controlTerms, controlText } = control;
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
