/**
 * Resumable, stateless stepping of the adaptive algorithms for the collector: given the term sets
 * (or terms) and the log of rounds already sent with their results, say what to send next or give
 * the final result. The algorithms are deterministic, so the step replays the log; nothing lives
 * in memory between check-ins and a collector restart loses nothing.
 */
import { type IsolationOptions, type IsolationResult, isolateTerms } from './isolation.ts';
import { isolateText, type TextIsolationOptions, type TextIsolationResult } from './isolation-text.ts';
import { type ProbeResult, type RobustOracleOptions, robustOracle } from './oracle.ts';
import { type ScreeningOptions, type ScreeningResult, screen } from './screening.ts';

export interface MessageRequest {
  /** Terms of the test canary (the planner renders them into the canary template). */
  terms: string[];
  /**
   * Send a matched control in the same window and report `void` if it did not arrive. Screening
   * rounds ask `false` per message: the round carries ceil(n / 10) shared controls and every
   * message of the round is `void` when most of them failed.
   */
  control: boolean;
}

export interface RoundRecord {
  messages: MessageRequest[];
  /** Per message: `positive` (not delivered intact in time, controls fine), `negative`, `void`. */
  results: ProbeResult[];
}

export type Step<R> =
  | { kind: 'send'; round: number; messages: MessageRequest[] }
  | { kind: 'done'; result: R; rounds: number };

type Send = (requests: MessageRequest[]) => Promise<ProbeResult[]>;

export class ReplayMismatchError extends Error {
  constructor(readonly round: number) {
    super(`round ${round} of the log does not match what the algorithm asks (changed inputs or options?)`);
    this.name = 'ReplayMismatchError';
  }
}

const same = (a: readonly MessageRequest[], b: readonly MessageRequest[]) =>
  a.length === b.length &&
  a.every((m, i) => m.control === b[i]?.control && m.terms.join('\u0000') === b[i]?.terms.join('\u0000'));

/** Replay `run` against `log`; stop at the first round not in the log. */
export async function replay<R>(
  run: (send: Send) => Promise<R>,
  log: readonly RoundRecord[],
): Promise<Step<R>> {
  let round = 0;
  let stop: (s: Step<R>) => void = () => {};
  const stopped = new Promise<Step<R>>((resolve) => {
    stop = resolve;
  });
  const send: Send = (requests) => {
    const record = log[round];
    if (!record) {
      stop({ kind: 'send', round, messages: requests });
      return new Promise<ProbeResult[]>(() => {}); // this replay ends here
    }
    if (!same(record.messages, requests)) throw new ReplayMismatchError(round);
    round++;
    return Promise.resolve(record.results);
  };
  const finished = run(send).then((result): Step<R> => ({ kind: 'done', result, rounds: round }));
  return Promise.race([finished, stopped]);
}

/** Next screening round (or the result) for `sets` given the rounds sent so far. */
export function screeningStep(
  sets: readonly (readonly string[])[],
  log: readonly RoundRecord[],
  options: Partial<ScreeningOptions> = {},
): Promise<Step<ScreeningResult>> {
  return replay(
    (send) =>
      screen(
        sets,
        (messages) => send(messages.map((terms) => ({ terms: [...terms], control: false }))),
        options,
      ),
    log,
  );
}

/**
 * `screeningStep` for a log that earlier options may have written (a collector upgraded while its
 * screens ran): with `options` first, then with each of `earlier` when the log does not match, so
 * a screen goes on as it began instead of failing and leaving its sets to the rounds.
 */
export async function resumeScreening(
  sets: readonly (readonly string[])[],
  log: readonly RoundRecord[],
  options: Partial<ScreeningOptions>,
  earlier: readonly Partial<ScreeningOptions>[],
): Promise<Step<ScreeningResult>> {
  let mismatch: unknown;
  for (const o of [options, ...earlier]) {
    try {
      return await screeningStep(sets, log, o);
    } catch (err) {
      if (!(err instanceof ReplayMismatchError)) throw err;
      mismatch ??= err;
    }
  }
  throw mismatch;
}

function termsProbe(send: Send) {
  return async (terms: readonly string[], o: { control: boolean }): Promise<ProbeResult> => {
    const [r] = await send([{ terms: [...terms], control: o.control }]);
    return r ?? 'void';
  };
}

/** Next isolation message (or the minimal combinations) for a suppressed multi-term message. */
export function isolationStep(
  terms: readonly string[],
  log: readonly RoundRecord[],
  options: IsolationOptions & Partial<RobustOracleOptions> = {},
): Promise<Step<IsolationResult>> {
  return replay((send) => isolateTerms(terms, robustOracle(termsProbe(send), options), options), log);
}

/** Next character-level isolation message (or the components) for a suppressed text. */
export function textIsolationStep(
  text: string,
  log: readonly RoundRecord[],
  options: Partial<RobustOracleOptions> & TextIsolationOptions = {},
): Promise<Step<TextIsolationResult>> {
  return replay((send) => isolateText(text, robustOracle(termsProbe(send), options), options), log);
}
