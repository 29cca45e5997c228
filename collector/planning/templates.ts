/**
 * Canary templates. A template places the nonce, optional benign padding and the terms;
 * a test and its control use the same template and the same padding, so the two texts
 * differ only in the term slots. Changing any template's wording, joiner or padding is a
 * change of meaning: bump TEMPLATE_VERSION (it is stored with every canary).
 */
import { LIMITS } from '../../protocol/common.ts';
import { controlVocabulary } from './controls.ts';
import { findTriggers, triggerIndex } from './matching.ts';
import { PADDING } from './vocabulary.ts';

export const TEMPLATE_VERSION = 1 as const;

export interface CanaryTemplate {
  /** Stable id within a version, e.g. `bare`. */
  id: string;
  version: number;
  /** Text with `{nonce}`, `{terms}` and optionally `{padding}`. The nonce must stand between spaces or at an end. */
  pattern: string;
  /** Placed between the terms of a combination. */
  joiner: string;
  /** Padding phrases one of which fills `{padding}` (empty when the pattern has none). */
  padding: readonly string[];
}

export const TEMPLATES: readonly CanaryTemplate[] = [
  { id: 'bare', version: TEMPLATE_VERSION, pattern: '{nonce} {terms}', joiner: ' ', padding: [] },
  {
    id: 'note',
    version: TEMPLATE_VERSION,
    pattern: '{nonce} {padding}: {terms}',
    joiner: ' ',
    padding: PADDING,
  },
  {
    id: 'trailer',
    version: TEMPLATE_VERSION,
    pattern: '{terms} ({padding}) {nonce}',
    joiner: ' ',
    padding: PADDING,
  },
];

export class TemplateError extends Error {
  override name = 'TemplateError';
}

/** The message text. `padding` is an index into template.padding (default 0). */
export function buildCanaryText(
  template: CanaryTemplate,
  terms: readonly string[],
  nonce: string,
  options: { padding?: number } = {},
): string {
  if (terms.length === 0) throw new TemplateError('a canary needs at least one term');
  if (!template.pattern.includes('{nonce}') || !template.pattern.includes('{terms}')) {
    throw new TemplateError(`template ${template.id} lacks {nonce} or {terms}`);
  }
  const padding = template.padding[options.padding ?? 0] ?? '';
  if (template.pattern.includes('{padding}') && padding === '') {
    throw new TemplateError(
      `template ${template.id} has {padding} but no padding phrase ${options.padding ?? 0}`,
    );
  }
  // Replace with functions so `$` in terms is never read as a replacement pattern.
  const text = template.pattern
    .replace('{padding}', () => padding)
    .replace('{terms}', () => terms.join(template.joiner))
    .replace('{nonce}', () => nonce);
  if ([...text].length > LIMITS.textChars)
    throw new TemplateError(`canary text longer than ${LIMITS.textChars}`);
  return text;
}

export interface SafetyProblem {
  where: 'template' | 'padding' | 'vocabulary';
  /** Template id, padding phrase or vocabulary word that carries the trigger. */
  source: string;
  term: string;
}

/**
 * Finds tested terms in what we add around them: template wording (with each padding
 * phrase in place), padding phrases, and the control vocabulary. Uses matchKey (NFKC,
 * case-insensitive, CJK spaces removed). Placeholders are replaced by U+0000 so that
 * no match can span a slot.
 */
export function checkTemplateSafety(
  templates: readonly CanaryTemplate[],
  allTerms: Iterable<string>,
  options: { vocabulary?: readonly string[] } = {},
): { ok: boolean; problems: SafetyProblem[] } {
  const index = triggerIndex(allTerms);
  const problems: SafetyProblem[] = [];
  const seenPadding = new Set<string>();
  for (const t of templates) {
    const bare = t.pattern.replace(/\{(nonce|terms)\}/g, '\u0000');
    const fills = bare.includes('{padding}') ? t.padding : [''];
    for (const p of fills) {
      const text = bare.replace('{padding}', () => p);
      for (const term of findTriggers(text, index)) problems.push({ where: 'template', source: t.id, term });
      if (p !== '' && !seenPadding.has(p)) {
        seenPadding.add(p);
        for (const term of findTriggers(p, index)) problems.push({ where: 'padding', source: p, term });
      }
    }
    for (const term of findTriggers(t.joiner, index))
      problems.push({ where: 'template', source: t.id, term });
  }
  for (const w of options.vocabulary ?? controlVocabulary()) {
    for (const term of findTriggers(w, index)) problems.push({ where: 'vocabulary', source: w, term });
  }
  return { ok: problems.length === 0, problems };
}
