/**
 * Testbed policies with many term sets, for the evaluate bench (bench/evaluate.ts) and the
 * many-sets evaluate test: a few rules of every kind the testbed has — a per-recipient drop, a
 * combination whose terms are also listed alone, a notice for one sender region in direct
 * chats, a replacement, and (optionally) a partial drop with probability < 1 — among innocent
 * single terms and innocent combinations, over three or four regions with 3 % background loss.
 * Terms are made-up three-character words (one distinct middle character each), so no term is
 * part of another, of a template or of a control. Seeded: the same size and seed give the same
 * policy and list.
 */
import { createRng, shuffled } from '../../collector/planning/rng.ts';
import type { RuleLike } from './expect.ts';

export interface GeneratedPolicy {
  policy: { regions: string[]; background: { loss: number }; rules: (RuleLike & Record<string, unknown>)[] };
  rules: (RuleLike & Record<string, unknown>)[];
  /** The term list, one set per entry, in a seeded order. */
  termSets: string[][];
  /** The text of the terms file. */
  terms: string;
}

const REGIONS = ['CN', 'US', 'AU', 'DE'];

/** The i-th made-up term: 词 + a distinct CJK character + 语. */
export function madeUpTerm(i: number): string {
  return `词${String.fromCharCode(0x4e00 + 37 + i * 11)}语`;
}

export function generatePolicy(o: {
  sets: number;
  seed: string;
  regions?: 3 | 4;
  /** Add a drop with probability 0.5 (the screen assumes deterministic rules; the bench measures it). */
  partial?: boolean;
}): GeneratedPolicy {
  if (o.sets < 8) throw new RangeError('at least 8 term sets');
  const regions = REGIONS.slice(0, o.regions ?? 3);
  let next = 0;
  const term = () => madeUpTerm(next++);
  const rules: (RuleLike & Record<string, unknown>)[] = [];
  const sets: string[][] = [];
  // one group of rules per 40 sets (at least one)
  const groups = Math.max(1, Math.floor(o.sets / 40));
  for (let g = 0; g < groups; g++) {
    const dropped = term();
    rules.push({
      id: `drop-${g}`,
      match: { any: [dropped] },
      action: 'drop',
      scope: { recipient_region: ['CN'] },
    });
    const [a, b] = [term(), term()];
    rules.push({
      id: `combo-${g}`,
      match: { all: [a, b] },
      action: 'drop',
      scope: { recipient_region: ['CN'] },
    });
    const noticed = term();
    rules.push({
      id: `notice-${g}`,
      match: { any: [noticed] },
      action: 'notice',
      notice: 'This message contains inappropriate content',
      scope: { conversation: 'direct', sender_region: ['CN'] },
    });
    const replaced = term();
    rules.push({
      id: `replace-${g}`,
      match: { any: [replaced] },
      action: 'replace',
      replace_with: '***',
      scope: { recipient_region: ['US'] },
    });
    sets.push([dropped], [a, b], [a], [b], [noticed], [replaced]);
    if (o.partial) {
      const partly = term();
      rules.push({
        id: `partial-${g}`,
        match: { any: [partly] },
        action: 'drop',
        probability: 0.5,
        scope: { recipient_region: ['CN'] },
      });
      sets.push([partly]);
    }
  }
  // innocent sets: mostly single terms, every fifth a combination of two innocent terms
  while (sets.length < o.sets) {
    sets.push(sets.length % 5 === 0 ? [term(), term()] : [term()]);
  }
  const termSets = shuffled(createRng(`generate:${o.seed}:${o.sets}`), sets.slice(0, o.sets));
  return {
    policy: { regions, background: { loss: 0.03 }, rules },
    rules,
    termSets,
    terms: `${termSets.map((s) => s.join(' + ')).join('\n')}\n`,
  };
}
