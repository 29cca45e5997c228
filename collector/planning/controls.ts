/**
 * Matched controls. A control term is "matched" to its test term when it has
 *   - the same length in code points (after NFC),
 *   - the same script, run by run: the term is cut into runs of one script (法lun功 is
 *     Han 1, Latin 3, Han 1) and each run is replaced by benign words of that script
 *     and exactly that length; spaces, punctuation and symbols are kept as they are,
 *     digits become random digits; Latin runs keep their capitalisation pattern,
 *   - the same Chinese variant: simplified terms get simplified-only words and at least
 *     one character that marks simplified (so detectScript agrees), traditional terms
 *     likewise, variant-neutral terms (六四) only words written alike in both, and
 *   - no tested term inside it (matchKey substring; see matching.ts).
 * Words come from vocabulary.ts; which words, and how a run is cut, is random (seeded).
 */

import { asTriggerIndex, findTriggers, matchKey, type TriggerIndex, triggerIndex } from './matching.ts';
import { pick, type Rng, randomInt } from './rng.ts';
import { type HanVariant, hanVariant, type RunFamily, type ScriptRun, scriptRuns } from './scripts.ts';
import { normalizeTerm } from './terms.ts';
import { ARABIC_WORDS, DEVANAGARI_WORDS, HAN_WORDS, LATIN_WORDS, TIBETAN_WORDS } from './vocabulary.ts';

export class ControlError extends Error {
  override name = 'ControlError';
}

/** Bit flags a word carries: it marks simplified (1) or traditional (2) Chinese. */
const SIMPLIFIED_MARK = 1;
const TRADITIONAL_MARK = 2;

interface PoolWord {
  text: string;
  length: number;
  marks: number;
}

function word(text: string): PoolWord {
  const v = hanVariant(text);
  const marks = v === 'simplified' ? SIMPLIFIED_MARK : v === 'traditional' ? TRADITIONAL_MARK : 0;
  return { text, length: [...text].length, marks };
}

function hanPool(variant: HanVariant): PoolWord[] {
  const simplified = HAN_WORDS.map((e) => word(typeof e === 'string' ? e : e[0])).filter(
    (w) => w.marks !== TRADITIONAL_MARK && hanVariant(w.text) !== 'mixed',
  );
  const traditional = HAN_WORDS.map((e) => word(typeof e === 'string' ? e : e[1])).filter(
    (w) => w.marks !== SIMPLIFIED_MARK && hanVariant(w.text) !== 'mixed',
  );
  switch (variant) {
    case 'simplified':
      return simplified;
    case 'traditional':
      return traditional;
    case 'neutral':
      return HAN_WORDS.filter((e): e is string => typeof e === 'string')
        .map(word)
        .filter((w) => w.marks === 0);
    case 'mixed':
      return [...simplified, ...traditional.filter((w) => w.marks !== 0)];
  }
}

const POOLS: Record<Exclude<RunFamily, 'han' | 'digit' | 'separator' | 'other'>, PoolWord[]> = {
  latin: LATIN_WORDS.map(word),
  tibetan: TIBETAN_WORDS.map(word),
  arabic: ARABIC_WORDS.map(word),
  devanagari: DEVANAGARI_WORDS.map(word),
};
const HAN_POOLS: Record<HanVariant, PoolWord[]> = {
  simplified: hanPool('simplified'),
  traditional: hanPool('traditional'),
  neutral: hanPool('neutral'),
  mixed: hanPool('mixed'),
};
const REQUIRED_MARKS: Record<HanVariant, number> = {
  simplified: SIMPLIFIED_MARK,
  traditional: TRADITIONAL_MARK,
  neutral: 0,
  mixed: SIMPLIFIED_MARK | TRADITIONAL_MARK,
};

/** Words whose lengths add up to `length` and whose marks cover `need`, chosen at random. */
function fill(pool: readonly PoolWord[], length: number, need: number, rng: Rng): string | undefined {
  const memo = new Map<string, boolean>();
  const feasible = (rem: number, needed: number): boolean => {
    if (rem === 0) return needed === 0;
    const key = `${rem}:${needed}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    const ok = pool.some((w) => w.length <= rem && feasible(rem - w.length, needed & ~w.marks));
    memo.set(key, ok);
    return ok;
  };
  if (!feasible(length, need)) return undefined;
  let out = '';
  let rem = length;
  let needed = need;
  while (rem > 0) {
    const options = pool.filter((w) => w.length <= rem && feasible(rem - w.length, needed & ~w.marks));
    const w = pick(rng, options);
    out += w.text;
    rem -= w.length;
    needed &= ~w.marks;
  }
  return out;
}

function matchCase(source: string, replacement: string): string {
  const letters = source.replace(/\P{L}/gu, '');
  if (letters.length > 1 && letters === letters.toUpperCase() && letters !== letters.toLowerCase()) {
    return replacement.toUpperCase();
  }
  const first = source[0] ?? '';
  if (first !== first.toLowerCase()) return replacement.charAt(0).toUpperCase() + replacement.slice(1);
  return replacement;
}

/** Why a term cannot get a matched control, or undefined when it can. */
export function controlUnsupported(term: string): string | undefined {
  const t = normalizeTerm(term);
  if (t === '') return 'empty term';
  const other = scriptRuns(t).find((r) => r.family === 'other');
  if (other) return `no benign vocabulary for the script of "${other.text}"`;
  const runs = scriptRuns(t);
  if (!runs.some((r) => r.family !== 'separator')) return 'term has no letters or digits to replace';
  return undefined;
}

function controlOnce(term: string, rng: Rng): string {
  const runs = scriptRuns(term);
  const hanRuns = runs.filter((r) => r.family === 'han');
  const variant = hanVariant(hanRuns.map((r) => r.text).join(''));
  // The variant's marks must appear somewhere: put them in the longest Han run.
  const marked: ScriptRun | undefined = hanRuns.reduce<ScriptRun | undefined>(
    (best, r) => (best === undefined || r.length > best.length ? r : best),
    undefined,
  );
  return runs
    .map((run) => {
      switch (run.family) {
        case 'separator':
          return run.text;
        case 'digit':
          return Array.from({ length: run.length }, () => String(randomInt(rng, 10))).join('');
        case 'other':
          throw new ControlError(`no benign vocabulary for the script of "${run.text}"`);
        case 'han': {
          const need = run === marked ? REQUIRED_MARKS[variant] : 0;
          const text = fill(HAN_POOLS[variant], run.length, need, rng);
          if (text === undefined) throw new ControlError(`cannot match Han run "${run.text}" (${variant})`);
          return text;
        }
        default: {
          const text = fill(POOLS[run.family], run.length, 0, rng);
          if (text === undefined) throw new ControlError(`cannot match ${run.family} run "${run.text}"`);
          return run.family === 'latin' ? matchCase(run.text, text) : text;
        }
      }
    })
    .join('');
}

export interface ControlOptions {
  /** Every term under test in the campaign; no control may contain one. The term set itself is always avoided. */
  avoid?: Iterable<string> | TriggerIndex;
  /** Tries per term before giving up (default 200). */
  maxAttempts?: number;
}

/** Benign control terms matched one-to-one to `termSet` (see the file comment for "matched"). */
export function makeControlTerms(
  termSet: readonly string[],
  rng: Rng,
  options: ControlOptions = {},
): string[] {
  const terms = termSet.map(normalizeTerm);
  const own = triggerIndex(terms);
  const avoid = asTriggerIndex(options.avoid);
  const safe = (text: string) =>
    findTriggers(text, own).length === 0 && (avoid === undefined || findTriggers(text, avoid).length === 0);
  const maxAttempts = options.maxAttempts ?? 200;
  const chosen: string[] = [];
  for (const term of terms) {
    const why = controlUnsupported(term);
    if (why) throw new ControlError(why);
    let control: string | undefined;
    for (let attempt = 0; attempt < maxAttempts && control === undefined; attempt++) {
      const candidate = controlOnce(term, rng);
      const clash = chosen.some((c) => matchKey(c) === matchKey(candidate));
      if (!clash && safe(candidate)) control = candidate;
    }
    if (control === undefined) {
      throw new ControlError(`no benign control for "${term}" after ${maxAttempts} tries`);
    }
    chosen.push(control);
  }
  return chosen;
}

/** Every word controls can be built from, for safety checks. */
export function controlVocabulary(): string[] {
  const all = new Set<string>();
  for (const pool of [...Object.values(POOLS), ...Object.values(HAN_POOLS)]) {
    for (const w of pool) all.add(w.text);
  }
  return [...all];
}
