import { describe, expect, it } from 'vitest';
import type { ProbeResult } from './oracle.ts';
import {
  isolationStep,
  ReplayMismatchError,
  type RoundRecord,
  resumeScreening,
  type Step,
  screeningStep,
  textIsolationStep,
} from './resumable.ts';
import { screen } from './screening.ts';
import { createCensor, type SimRule } from './simulate.ts';
import { US_TO_CN_GROUP } from './simulate-evidence.ts';
import { renderTerms, simRoundProbe } from './simulate-probes.ts';

const T0 = Date.UTC(2026, 5, 1);
const rules: SimRule[] = [
  { id: 'lxb', all: ['六四', '刘晓波'], action: 'drop' },
  { id: 'combo', all: ['709', '律师'], action: 'drop' },
];
const sets = [
  ['天气'],
  ['709'],
  ['公园', '咖啡'],
  ['律师'],
  ['足球'],
  ['六四', '刘晓波', '熊猫'],
  ['早餐'],
  ['面条'],
];

/** Drive a step function to the end the way the collector would: one round per check-in. */
async function drive<R>(
  step: (log: RoundRecord[]) => Promise<Step<R>>,
  answer: (messages: RoundRecord['messages']) => ProbeResult[],
): Promise<{ result: R; log: RoundRecord[] }> {
  const log: RoundRecord[] = [];
  for (;;) {
    const s = await step(log);
    if (s.kind === 'done') return { result: s.result, log };
    log.push({ messages: s.messages, results: answer(s.messages) });
  }
}

describe('screeningStep', () => {
  it('replays a logged screening to the same result as running it live', async () => {
    const live = await screen(
      sets,
      simRoundProbe(createCensor({ rules, backgroundLoss: 0.03 }, 4), {
        scope: US_TO_CN_GROUP,
        start: T0,
        roundSpacingMs: 60_000,
        controlText: '通知 天气 谢谢',
      }).probe,
    );
    const censor = createCensor({ rules, backgroundLoss: 0.03 }, 4);
    let round = 0;
    const { result, log } = await drive(
      (log) => screeningStep(sets, log),
      (messages) => {
        const time = T0 + round++ * 60_000;
        // same draw order as simRoundProbe: the round's control first, then the messages
        const controlLost =
          censor.deliver({ text: '通知 天气 谢谢', time, ...US_TO_CN_GROUP }).status !== 'delivered';
        const results = messages.map((m) => {
          const d = censor.deliver({ text: renderTerms(m.terms), time, ...US_TO_CN_GROUP });
          return d.status === 'delivered' ? ('negative' as const) : ('positive' as const);
        });
        return controlLost ? results.map(() => 'void' as const) : results;
      },
    );
    expect(result.suppressed).toEqual(live.suppressed);
    expect(result.crossSet).toEqual(live.crossSet);
    expect(result.suppressed).toEqual([5]);
    expect(result.crossSet).toEqual([[1, 3]]);
    expect(log.length).toBe(live.rounds);
  });

  it('goes on with earlier options where the log was written with them, and only then', async () => {
    // noiseless: a pack is positive when a rule fires in it (709 + 律师 meet in one cross-set search)
    const fires = (terms: readonly string[]) => rules.some((r) => r.all.every((t) => terms.includes(t)));
    const answer = (messages: RoundRecord['messages']) =>
      messages.map((m) => (fires(m.terms) ? ('positive' as const) : ('negative' as const)));
    const before = { crossSetOneRound: false };
    const now = { crossSetOneRound: true };
    const old = await drive((log) => screeningStep(sets, log, before), answer);
    const fresh = await drive((log) => screeningStep(sets, log, now), answer);
    expect(old.result.crossSet).toEqual([[1, 3]]);
    expect(fresh.result.crossSet).toEqual([[1, 3]]);
    // the cross-set search asks differently: the two logs part at some round
    const parted = old.log.findIndex(
      (r, i) => JSON.stringify(r.messages) !== JSON.stringify(fresh.log[i]?.messages),
    );
    expect(parted).toBeGreaterThan(0);
    for (const upTo of [parted + 1, parted + 2, old.log.length]) {
      const log = old.log.slice(0, upTo);
      await expect(screeningStep(sets, log, now)).rejects.toBeInstanceOf(ReplayMismatchError);
      expect(await resumeScreening(sets, log, now, [before])).toEqual(await screeningStep(sets, log, before));
    }
    // a log the current options wrote, or one both would have written, is replayed with them
    for (const log of [fresh.log.slice(0, parted + 1), old.log.slice(0, parted)])
      expect(await resumeScreening(sets, log, now, [before])).toEqual(await screeningStep(sets, log, now));
    // a log no options wrote is still refused
    const bad: RoundRecord[] = [{ messages: [{ terms: ['x'], control: false }], results: ['negative'] }];
    await expect(resumeScreening(sets, bad, now, [before])).rejects.toBeInstanceOf(ReplayMismatchError);
  });

  it('refuses a log that does not match the plan', async () => {
    const bad: RoundRecord[] = [{ messages: [{ terms: ['x'], control: false }], results: ['negative'] }];
    await expect(screeningStep(sets, bad)).rejects.toBeInstanceOf(ReplayMismatchError);
  });
});

describe('isolationStep', () => {
  it('asks one message at a time and ends with the minimal combination', async () => {
    const terms = ['天气', '709', '公园', '律师', '足球'];
    const truth = (t: readonly string[]) => t.includes('709') && t.includes('律师');
    const { result, log } = await drive(
      (log) => isolationStep(terms, log),
      (messages) => messages.map((m) => (truth(m.terms) ? 'positive' : 'negative')),
    );
    expect(result.combinations).toEqual([['709', '律师']]);
    expect(log.every((r) => r.messages.length === 1)).toBe(true);
    // confirmations carry a control, first asks do not
    expect(log.some((r) => r.messages[0]!.control)).toBe(true);
    expect(log[0]!.messages[0]!.control).toBe(false);
  });
});

describe('textIsolationStep', () => {
  it('ends with the components of a suppressed text', async () => {
    const text = '今天天气很好，我们纪念六四，然后去公园，晚上读刘晓波的文章。';
    const truth = (pieces: readonly string[]) => {
      const joined = pieces.join(' | ');
      return joined.includes('六四') && joined.includes('刘晓波');
    };
    const { result } = await drive(
      (log) => textIsolationStep(text, log),
      (messages) => messages.map((m) => (truth(m.terms) ? 'positive' : 'negative')),
    );
    expect([...result.components].sort()).toEqual(['六四', '刘晓波'].sort());
  });

  it('rejects the step, without an unhandled rejection, when a subset stays void', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const log: RoundRecord[] = [];
      let error: unknown;
      for (let i = 0; i < 40 && error === undefined; i++) {
        const step = await isolationStep(['709', '律师'], log).catch((e: unknown) => {
          error = e;
          return undefined;
        });
        if (!step || step.kind === 'done') break;
        const results: ProbeResult[] = step.messages.map((m) => (m.terms.length === 2 ? 'positive' : 'void'));
        log.push({ messages: step.messages, results });
      }
      expect(String(error)).toMatch(/stayed void/);
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
