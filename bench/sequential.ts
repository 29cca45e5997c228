/**
 * Achieved error rates and sample sizes of the sequential design (collector/analysis/sequential.ts)
 * on a simulated censor: paired test/control canaries, a look every 4 pairs.
 *
 *   npx tsx bench/sequential.ts [--runs 1000] [--look-every 4]
 */
import { parseArgs } from 'node:util';
import { INITIAL_SEQUENTIAL_STATE, sequentialLook } from '../collector/analysis/sequential.ts';
import { type CensorConfig, createCensor, type SimRule } from '../collector/analysis/simulate.ts';
import { addPair, emptyEvidence, sendPair, US_TO_CN_GROUP } from '../collector/analysis/simulate-evidence.ts';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '1000' }, 'look-every': { type: 'string', default: '4' } },
});
const runs = Number(values.runs);
const lookEvery = Number(values['look-every']);
const T0 = Date.UTC(2026, 5, 1);
const TEN_MIN = 600_000;

function run(config: Partial<CensorConfig>, seed: number): { verdict: string; pairs: number } {
  const censor = createCensor({ rules: [], backgroundLoss: 0.03, ...config }, seed);
  let state = INITIAL_SEQUENTIAL_STATE;
  const evidence = emptyEvidence();
  for (let i = 0; ; i++) {
    addPair(
      evidence,
      sendPair(censor, '通知 六四 刘晓波 谢谢', '通知 天气 公园 谢谢', US_TO_CN_GROUP, T0 + i * TEN_MIN),
    );
    if ((i + 1) % lookEvery !== 0) continue;
    const step = sequentialLook(state, evidence);
    state = step.state;
    if (step.decision.kind === 'settled') return { verdict: step.decision.verdict, pairs: i + 1 };
  }
}

const rule = (action: SimRule['action'], probability = 1): SimRule[] => [
  { id: 'r', all: ['六四', '刘晓波'], action, probability, delayMs: 20_000 },
];
const scenarios: [string, Partial<CensorConfig>, string][] = [
  ['no effect, 3% loss', {}, 'none'],
  [
    'no effect, 5% loss + 1 h outage',
    { backgroundLoss: 0.05, outages: [{ from: T0 + 6 * TEN_MIN, to: T0 + 12 * TEN_MIN }] },
    'none',
  ],
  ['no effect, 10% loss', { backgroundLoss: 0.1 }, 'none'],
  ['drop p=0.25 (at the margin)', { rules: rule('drop', 0.25) }, 'suppressed'],
  ['drop p=0.5', { rules: rule('drop', 0.5) }, 'suppressed'],
  ['drop', { rules: rule('drop') }, 'suppressed'],
  ['notice', { rules: rule('notice') }, 'rejected'],
  ['replace', { rules: rule('replace') }, 'altered'],
  ['delay 20 s', { rules: rule('delay') }, 'delayed'],
];

console.log(`sequential design: alpha 0.05, beta 0.10, margin 0.2, max 80 pairs; ${runs} runs each`);
console.log(
  `${'truth'.padEnd(34)}${'right'.padStart(7)}${'wrong'.padStart(7)}${'incon.'.padStart(8)}  mean pairs`,
);
for (const [label, config, expected] of scenarios) {
  const results = Array.from({ length: runs }, (_, i) => run(config, i + 1));
  const share = (f: (v: string) => boolean) => results.filter((r) => f(r.verdict)).length / runs;
  const right = share((v) => v === expected);
  const inconclusive = share((v) => v === 'inconclusive');
  const wrong = Math.max(0, 1 - right - inconclusive);
  const pairs = results.reduce((a, r) => a + r.pairs, 0) / runs;
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`.padStart(7);
  console.log(
    `${label.padEnd(34)}${pct(right)}${pct(wrong)} ${pct(inconclusive)}  ${pairs.toFixed(1).padStart(6)}`,
  );
}
console.log('wrong = a finding when there is no effect (type I), or any other verdict when there is one');
