/**
 * Screening and isolation benchmark on the Citizen Lab WeChat lists (read in place from
 * ../shared/data/citizenlab or $SILENTDROP_CITIZENLAB_DIR; never copied).
 *
 *   npx tsx bench/screening.ts [--sets 1000] [--suppressed 10] [--decoys 30] [--split 3] [--loss 0.03] [--seeds 5]
 *                              [--article-chars 1500] [--articles 100] [--clearance-screens 200]
 *                              [--clearance-beta 0.1]
 *
 * Prints messages sent by group testing beside one set per message, precision and recall (also
 * as the collector runs a `screen` campaign: paired controls, flagged sets judged by the rounds), and
 * isolation messages per censored combination beside Xiong & Knockel (2019): ~35 vs ~343, and
 * what the screens' clearance publishes about a set a rule drops only sometimes (decision 038).
 */
import { parseArgs } from 'node:util';
import { BENIGN_WORDS, benignArticle } from '../collector/analysis/benign-terms.ts';
import { citizenLabAvailable, loadCitizenLab } from '../collector/analysis/citizenlab-data.ts';
import { isolateTerms, robustOracle } from '../collector/analysis/isolation.ts';
import { isolateText } from '../collector/analysis/isolation-text.ts';
import type { ProbeResult } from '../collector/analysis/oracle.ts';
import { screen } from '../collector/analysis/screening.ts';
import { INITIAL_SEQUENTIAL_STATE, sequentialLook } from '../collector/analysis/sequential.ts';
import { createCensor } from '../collector/analysis/simulate.ts';
import { addPair, emptyEvidence, sendPair, US_TO_CN_GROUP } from '../collector/analysis/simulate-evidence.ts';
import {
  renderTerms,
  simRoundProbe,
  simTermsProbe,
  simTextProbe,
} from '../collector/analysis/simulate-probes.ts';
import {
  accuracy,
  buildScreeningScenario,
  suppressedAlone,
  usableCombinations,
} from '../collector/analysis/simulate-screening.ts';
import { SCREEN_CLEARANCE, SCREEN_OPTIONS } from '../collector/followups.ts';

const { values } = parseArgs({
  options: {
    sets: { type: 'string', default: '1000' },
    suppressed: { type: 'string', default: '10' },
    decoys: { type: 'string', default: '30' },
    split: { type: 'string', default: '3' },
    loss: { type: 'string', default: '0.03' },
    seeds: { type: 'string', default: '5' },
    'article-chars': { type: 'string', default: '1500' },
    articles: { type: 'string', default: '100' },
    'clearance-screens': { type: 'string', default: '200' },
    'clearance-beta': { type: 'string' },
  },
});
const total = Number(values.sets);
const nSuppressed = Number(values.suppressed);
const decoys = Number(values.decoys);
const splitRules = Number(values.split);
const loss = Number(values.loss);
const seeds = Number(values.seeds);
const articleChars = Number(values['article-chars']);
const articles = Number(values.articles);
const clearanceScreens = Number(values['clearance-screens']);
/** The clearance table's rule: the collector's (SCREEN_CLEARANCE), or a stricter level for each look. */
const clearanceRule = {
  ...SCREEN_CLEARANCE,
  ...(values['clearance-beta'] === undefined ? {} : { beta: Number(values['clearance-beta']) }),
};
if (!(clearanceRule.beta > 0 && clearanceRule.beta < 1)) {
  console.error(`--clearance-beta must be between 0 and 1 (got ${values['clearance-beta']})`);
  process.exit(2);
}

if (!citizenLabAvailable()) {
  console.error('Citizen Lab data not found; set SILENTDROP_CITIZENLAB_DIR');
  process.exit(1);
}
const entries = [...loadCitizenLab('crackdown709'), ...loadCitizenLab('coronavirus')];
const T0 = Date.UTC(2026, 5, 1);
const controlText = '通知 天气 公园 谢谢';
const simOptions = { scope: US_TO_CN_GROUP, start: T0, roundSpacingMs: 3_600_000, controlText };

console.log(
  `screening ${total} term sets: ${nSuppressed} suppressed (Citizen Lab combinations), ${decoys} decoys ` +
    `(one component alone), ${splitRules} combinations split over nearby one-term sets; loss ${loss}`,
);
const isolationRuns: { tests: number; messages: number; components: number; exact: boolean }[] = [];

/** The seed's term list and censor, and the sets the censor suppresses on their own. */
function seededScenario(seed: number) {
  const scenario = buildScreeningScenario(entries, {
    total,
    suppressed: nSuppressed,
    decoys,
    splitRules,
    seed,
  });
  const censor = createCensor({ rules: scenario.rules, backgroundLoss: loss }, seed);
  const truth = scenario.sets.flatMap((s, i) => (suppressedAlone(censor, s, US_TO_CN_GROUP) ? [i] : []));
  return { scenario, censor, truth };
}

/** One table of seeded screens; packs in seeded random order (recommended) or in list order. */
async function screeningTable(inputOrder: boolean, isolate: boolean): Promise<void> {
  console.log(
    inputOrder
      ? '\npacked in list order (split combinations often share a pack: cross-set attribution)'
      : '\npacked in seeded random order (shuffleSeed = seed)',
  );
  console.log(
    'seed  truth  found  cross  cr-ok  packs  rounds  tests  controls  messages  one-per-set  saving  precision  recall',
  );
  let sumMessages = 0;
  let sumBaseline = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const { scenario, censor, truth } = seededScenario(seed);
    const sim = simRoundProbe(censor, simOptions);
    const r = await screen(scenario.sets, sim.probe, inputOrder ? {} : { shuffleSeed: seed });
    const acc = accuracy(r.suppressed, truth);
    // a reported cross-set group is right when its union is suppressed and no member is alone
    const crossOk = r.crossSet.filter(
      (g) =>
        g.every((i) => !truth.includes(i)) &&
        suppressedAlone(
          censor,
          g.flatMap((i) => scenario.sets[i]!),
          US_TO_CN_GROUP,
        ),
    ).length;
    const messages = sim.counters.tests + sim.counters.controls;
    // one set per message, each once, with the same control ratio (1 per 10) and no retests: a floor
    const baseline = total + Math.ceil(total / 10);
    sumMessages += messages;
    sumBaseline += baseline;
    const row = [
      seed,
      truth.length,
      r.suppressed.length,
      r.crossSet.length,
      crossOk,
      r.packs,
      r.rounds,
      sim.counters.tests,
      sim.counters.controls,
      messages,
      baseline,
      `${(baseline / messages).toFixed(1)}x`,
      acc.precision.toFixed(3),
      acc.recall.toFixed(3),
    ];
    console.log(row.map((v) => String(v).padStart(5)).join('  '));
    if (!isolate) continue;
    // isolation follow-up of every suppressed set found (term level, with its extra terms)
    for (const i of r.suppressed) {
      const set = scenario.sets[i]!;
      const rule = scenario.rules.find((x) => x.all.every((t) => set.includes(t)));
      const isoCensor = createCensor({ rules: scenario.rules, backgroundLoss: loss }, seed * 1000 + i);
      const probe = simTermsProbe(isoCensor, simOptions);
      const found = await isolateTerms(set, robustOracle(probe.probe));
      const exact =
        rule !== undefined &&
        found.combinations.length === 1 &&
        [...found.combinations[0]!].sort().join('+') === [...rule.all].sort().join('+');
      isolationRuns.push({
        tests: probe.counters.tests,
        messages: probe.counters.tests + probe.counters.controls,
        components: rule?.all.length ?? 0,
        exact,
      });
    }
  }
  console.log(
    `mean: ${(sumMessages / seeds).toFixed(0)} messages vs ${(sumBaseline / seeds).toFixed(0)} one set per message (${(sumBaseline / sumMessages).toFixed(1)}x fewer)`,
  );
}

/**
 * The screen as the collector runs it (collector/followups.ts, `screen` mode): every pack goes
 * out with its own matched control (void when the control does not arrive), with the collector's
 * options (SCREEN_OPTIONS: one positive is enough to split, `confirmSet: 1`; with `clearance` the
 * second pass of decision 024), and every set the screen flags is then judged by the rounds
 * one per message with paired controls and the sequential design (a look every 4 pairs) until
 * it settles. Reported: the screen's messages, the rounds' messages for flagged sets, and the
 * precision and recall of the final verdicts, and the rounds the screen took.
 */
async function collectorTable(clearance: boolean): Promise<void> {
  console.log(
    clearance
      ? '\nwith the clearance of decision 024 (FollowupOptions.screenClearance): a second pass asks the cleared sets again, one group per first-pass pack where no known trigger is in it, until 11 intact packs rule out a drop of 20 % or more (beta 0.1)'
      : '\nas the collector runs it: matched control per pack, confirmSet 1, flagged sets judged by the rounds',
  );
  console.log(
    'seed  truth  flagged  screen-rounds  screen-msgs  round-msgs  messages  one-per-set  saving  precision  recall  (one-per-set: precision  recall)',
  );
  let sumMessages = 0;
  let sumBaseline = 0;
  let sumRounds = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const { scenario, censor, truth } = seededScenario(seed);
    let screenMessages = 0;
    let round = 0;
    const probe = async (messages: readonly (readonly string[])[]): Promise<ProbeResult[]> => {
      const time = T0 + round++ * 3_600_000;
      screenMessages += 2 * messages.length;
      return messages.map((terms) => {
        const pair = sendPair(censor, renderTerms(terms), controlText, US_TO_CN_GROUP, time);
        if (pair.control !== 'delivered') return 'void';
        return pair.test === 'delivered' ? 'negative' : 'positive';
      });
    };
    const r = await screen(scenario.sets, probe, {
      ...SCREEN_OPTIONS('', { clearance }),
      shuffleSeed: seed,
    });
    // flagged: suppressed alone, or members of a cross-set group (their union goes to isolation;
    // here each member set is judged alone, as the rounds do with listed sets the screen did not clear)
    const flagged = [...new Set([...r.suppressed, ...r.crossSet.flat(), ...r.unresolved.flat()])];
    /** The rounds' judgement of one set: pairs until the sequential design settles. */
    const judge = (i: number): { messages: number; suppressed: boolean } => {
      let state = INITIAL_SEQUENTIAL_STATE;
      const evidence = emptyEvidence();
      for (let k = 0; k < 400; k++) {
        const at = T0 + (round + k) * 600_000;
        addPair(evidence, sendPair(censor, renderTerms(scenario.sets[i]!), controlText, US_TO_CN_GROUP, at));
        if ((k + 1) % 4 !== 0) continue;
        const step = sequentialLook(state, evidence);
        state = step.state;
        if (step.decision.kind === 'settled') {
          return { messages: 2 * (k + 1), suppressed: step.decision.verdict === 'suppressed' };
        }
      }
      return { messages: 800, suppressed: false };
    };
    let roundMessages = 0;
    const found: number[] = [];
    for (const i of flagged) {
      const j = judge(i);
      roundMessages += j.messages;
      if (j.suppressed) found.push(i);
    }
    // one set per message: every set judged by the rounds the same way
    let baseline = 0;
    const foundAlone: number[] = [];
    for (let i = 0; i < scenario.sets.length; i++) {
      const j = judge(i);
      baseline += j.messages;
      if (j.suppressed) foundAlone.push(i);
    }
    const accAlone = accuracy(foundAlone, truth);
    const acc = accuracy(found, truth);
    const messages = screenMessages + roundMessages;
    sumMessages += messages;
    sumBaseline += baseline;
    sumRounds += r.rounds;
    const row = [
      seed,
      truth.length,
      flagged.length,
      r.rounds,
      screenMessages,
      roundMessages,
      messages,
      baseline,
      `${(baseline / messages).toFixed(1)}x`,
      acc.precision.toFixed(3),
      acc.recall.toFixed(3),
      accAlone.precision.toFixed(3),
      accAlone.recall.toFixed(3),
    ];
    console.log(row.map((v) => String(v).padStart(5)).join('  '));
  }
  console.log(
    `mean: ${(sumMessages / seeds).toFixed(0)} messages vs ${(sumBaseline / seeds).toFixed(0)} one set per message (${(sumBaseline / sumMessages).toFixed(1)}x fewer); the screen took ${(sumRounds / seeds).toFixed(1)} rounds a seed (in a collector a round is a follow-up step)`,
  );
}

/**
 * What a screen's clearance (decision 038) publishes about a set that a rule drops only sometimes:
 * twelve one-term sets (eleven everyday words and 六四), 六四 dropped with probability p (always,
 * or at the sequential design's margin and above), in a group whose messages are lost at a
 * background rate (a message is lost when one recipient of the scope lost it: 3 % a recipient
 * makes about 9 % in a group of three), screened as the collector does (SCREEN_OPTIONS with the
 * clearance, a shared control every ten messages). Printed per line: the share of screens that cleared the dropped set (a published
 * `none`; the clearance aims at 0.1 or less at p = margin), the share that flagged it, innocent
 * sets flagged per screen (each then judged by the rounds) and messages per screen.
 * `--clearance-beta` tries a stricter level for each look of the pass test (decision 038).
 */
async function clearanceTable(): Promise<void> {
  const sets = [...BENIGN_WORDS.slice(0, 11), '六四'].map((t) => [t]);
  const dropped = sets.length - 1;
  console.log(
    `\nthe clearance under partial drops and loss (margin ${clearanceRule.margin}, each look at beta ${clearanceRule.beta}): ${sets.length} one-term sets, one dropped with probability p, ${clearanceScreens} screens a line`,
  );
  console.log('message loss     p  cleared  flagged  innocent-flagged  messages');
  for (const messageLoss of [0, 0.03, 0.09]) {
    for (const p of [1, 0.5, 0.3, 0.2]) {
      let cleared = 0;
      let flagged = 0;
      let innocentFlagged = 0;
      let messages = 0;
      for (let seed = 1; seed <= clearanceScreens; seed++) {
        const censor = createCensor(
          {
            rules: [{ id: 'partial', all: ['六四'], action: 'drop', probability: p }],
            backgroundLoss: messageLoss,
          },
          seed,
        );
        const { probe, counters } = simRoundProbe(censor, { ...simOptions, roundSpacingMs: 60_000 });
        const r = await screen(sets, probe, {
          ...SCREEN_OPTIONS('', { clearance: true }),
          clearance: clearanceRule,
          shuffleSeed: seed,
        });
        messages += counters.tests + counters.controls;
        if (r.status[dropped] === 'clear') cleared++;
        if (r.status[dropped] === 'suppressed') flagged++;
        innocentFlagged += r.status.slice(0, dropped).filter((x) => x !== 'clear').length;
      }
      const n = clearanceScreens;
      console.log(
        [
          messageLoss.toFixed(2).padStart(12),
          p.toFixed(1).padStart(5),
          (cleared / n).toFixed(3).padStart(7),
          (flagged / n).toFixed(3).padStart(7),
          (innocentFlagged / n).toFixed(2).padStart(16),
          (messages / n).toFixed(1).padStart(9),
        ].join('  '),
      );
    }
  }
}

await screeningTable(false, true);
await screeningTable(true, false);
await collectorTable(false);
await collectorTable(true);
await clearanceTable();

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
console.log(
  '\nisolation, term level (each suppressed set found above: its combination plus 0–1 extra terms)',
);
console.log(
  `  ${isolationRuns.length} sets, exact ${isolationRuns.filter((x) => x.exact).length}, ` +
    `components ${mean(isolationRuns.map((x) => x.components)).toFixed(1)}, ` +
    `tests ${mean(isolationRuns.map((x) => x.tests)).toFixed(1)}, ` +
    `messages incl. controls ${mean(isolationRuns.map((x) => x.messages)).toFixed(1)}`,
);

// Term level with more innocent terms, and character level inside an article (Xiong & Knockel's task)
const usable = usableCombinations(entries);
const sample = Array.from({ length: articles }, (_, i) => usable[(i * 37) % usable.length]!);
/** A noiseless oracle straight from the censor's rules: counts the messages a perfect channel needs. */
function noiseless(censor: ReturnType<typeof createCensor>, render: (t: readonly string[]) => string) {
  const asked = new Set<string>();
  const oracle = async (terms: readonly string[]) => {
    asked.add([...terms].sort().join('\u0000'));
    return censor.wouldAct({ text: render(terms), time: T0, ...US_TO_CN_GROUP }) !== undefined;
  };
  return { oracle, asked };
}
const rows: Record<string, number[][]> = { term: [], termClean: [], text: [], textClean: [] };
for (const [i, combo] of sample.entries()) {
  const censor = createCensor(
    { rules: [{ id: 'r', all: combo, action: 'drop' }], backgroundLoss: loss },
    7000 + i,
  );
  const article = benignArticle(combo, articleChars, 9000 + i);
  const words = article.innocentWords.slice(0, 8);
  const message = [...words.slice(0, 4), ...combo, ...words.slice(4)];
  const termProbe = simTermsProbe(censor, simOptions);
  const t = await isolateTerms(message, robustOracle(termProbe.probe));
  rows.term!.push([
    termProbe.counters.tests,
    termProbe.counters.tests + termProbe.counters.controls,
    exactly(t.combinations, combo),
  ]);
  const clean = noiseless(censor, renderTerms);
  const tc = await isolateTerms(message, clean.oracle);
  rows.termClean!.push([clean.asked.size, clean.asked.size, exactly(tc.combinations, combo)]);
  const textProbe = simTextProbe(censor, simOptions);
  const x = await isolateText(article.text, robustOracle(textProbe.probe), { lossRate: loss });
  rows.text!.push([
    textProbe.counters.tests,
    textProbe.counters.tests + textProbe.counters.controls,
    exactly([x.components], combo),
  ]);
  const cleanText = noiseless(censor, (pieces) => pieces.join(' | '));
  const xc = await isolateText(article.text, cleanText.oracle);
  rows.textClean!.push([cleanText.asked.size, cleanText.asked.size, exactly([xc.components], combo)]);
}
function exactly(found: string[][], combo: string[]): number {
  return found.length === 1 && [...found[0]!].sort().join('+') === [...combo].sort().join('+') ? 1 : 0;
}
const col = (runs: number[][] | undefined, k: number) => mean((runs ?? []).map((r) => r[k]!));
// information floor of the character-level task: which k end positions out of L (log2 C(L, k))
// plus the start of each component (entropy of the Citizen Lab component lengths, about 2.5 bits)
const log2Choose = (n: number, k: number) => {
  let v = 0;
  for (let i = 0; i < k; i++) v += Math.log2((n - i) / (i + 1));
  return v;
};
const floor = mean(sample.map((c) => log2Choose(articleChars, c.length) + 2.5 * c.length));
const line = (label: string, r: number[][] | undefined, perFloor = false) =>
  console.log(
    `  ${label.padEnd(58)} tests ${col(r, 0).toFixed(1).padStart(5)}  messages incl. controls ${col(r, 1).toFixed(1).padStart(5)}  exact ${(r ?? []).reduce((a, x) => a + x[2]!, 0)}/${(r ?? []).length}` +
      (perFloor ? `  (${(col(r, 1) / floor).toFixed(2)}x the floor)` : ''),
  );
const components = mean(sample.map((c) => c.length));
console.log(
  `\nisolation on ${sample.length} Citizen Lab combinations (2–5 components, mean ${components.toFixed(2)})`,
);
line(`term level, combination + 8 innocent terms, loss ${loss}`, rows.term);
line('term level, same, noiseless channel (distinct messages)', rows.termClean);
line(`character level, ~${articleChars}-character article, loss ${loss}`, rows.text, true);
line('character level, same, noiseless channel (distinct messages)', rows.textClean, true);
console.log(`  (information floor for this task: ~${floor.toFixed(1)} yes/no answers per article)`);
console.log('  Xiong & Knockel (2019), per censored article: ~35 messages; the earlier method: ~343');
