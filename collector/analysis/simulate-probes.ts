/**
 * Glue for tests and benchmarks: probes that send canaries through a simulated censor the way a
 * campaign would (test canaries with controls in the same window) and count every message.
 */
import type { ProbeResult } from './isolation.ts';
import type { Censor } from './simulate.ts';
import type { SimScope } from './simulate-evidence.ts';

export interface ProbeCounters {
  tests: number;
  controls: number;
  rounds: number;
}

export interface SimProbeOptions {
  scope: SimScope;
  start: number;
  /** Time between rounds (one probe call = one round). */
  roundSpacingMs: number;
  controlText: string;
  deadlineMs?: number;
  /** How the canary text is made from its terms. */
  render?: (terms: readonly string[]) => string;
}

export const renderTerms = (terms: readonly string[]) => `通知 ${terms.join(' / ')} 谢谢`;

function arrived(censor: Censor, text: string, time: number, o: SimProbeOptions): boolean {
  const d = censor.deliver({ text, time, ...o.scope });
  return d.status === 'delivered' && (d.latencyMs ?? 0) <= (o.deadlineMs ?? 60_000);
}

/**
 * A round probe: all messages of a round go out in one window with ceil(n / controlEvery)
 * controls. If more than half the controls fail the round is void (outage); otherwise a message
 * is positive when it did not arrive intact and in time.
 */
export function simRoundProbe(censor: Censor, o: SimProbeOptions & { controlEvery?: number }) {
  const counters: ProbeCounters = { tests: 0, controls: 0, rounds: 0 };
  const render = o.render ?? renderTerms;
  const probe = async (messages: readonly (readonly string[])[]): Promise<ProbeResult[]> => {
    const time = o.start + counters.rounds * o.roundSpacingMs;
    counters.rounds++;
    const nControls = Math.max(1, Math.ceil(messages.length / (o.controlEvery ?? 10)));
    let controlsLost = 0;
    for (let i = 0; i < nControls; i++) if (!arrived(censor, o.controlText, time, o)) controlsLost++;
    counters.controls += nControls;
    counters.tests += messages.length;
    const results = messages.map((terms) =>
      arrived(censor, render(terms), time, o) ? 'negative' : 'positive',
    );
    return controlsLost * 2 > nControls ? results.map(() => 'void' as const) : results;
  };
  return { probe, counters };
}

/** A single-message probe, for isolation: the test alone, or with its own control when asked. */
export function simTermsProbe(censor: Censor, o: SimProbeOptions) {
  const counters: ProbeCounters = { tests: 0, controls: 0, rounds: 0 };
  const render = o.render ?? renderTerms;
  const probe = async (terms: readonly string[], opts: { control: boolean }): Promise<ProbeResult> => {
    const time = o.start + counters.rounds * o.roundSpacingMs;
    counters.rounds++;
    counters.tests++;
    let controlLost = false;
    if (opts.control) {
      counters.controls++;
      controlLost = !arrived(censor, o.controlText, time, o);
    }
    const delivered = arrived(censor, render(terms), time, o);
    if (delivered) return 'negative';
    return controlLost ? 'void' : 'positive';
  };
  return { probe, counters };
}

/** A probe over raw text pieces (character-level isolation): pieces kept apart by ` | `. */
export function simTextProbe(censor: Censor, o: SimProbeOptions) {
  return simTermsProbe(censor, { ...o, render: (pieces) => pieces.join(' | ') });
}
