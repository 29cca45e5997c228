/**
 * Glue for tests and benchmarks: send paired test/control canaries through a simulated censor
 * and count outcomes the way the collector finalises them (late beyond the deadline = delayed).
 */
import type { Censor, Conversation, SimMessage } from './simulate.ts';
import type { ArmCounts, Evidence } from './verdict.ts';

export interface SimScope {
  conversation: Conversation;
  senderRegion: string;
  recipientRegion: string;
}

export const US_TO_CN_GROUP: SimScope = { conversation: 'group', senderRegion: 'US', recipientRegion: 'CN' };

export function emptyArm(): ArmCounts {
  return { delivered: 0, delayed: 0, missing: 0, altered: 0, rejected: 0 };
}

export interface PairOutcome {
  test: keyof ArmCounts;
  control: keyof ArmCounts;
  testLatencyMs?: number;
  controlLatencyMs?: number;
}

/** One window: a test canary and its control sent at `time`. */
export function sendPair(
  censor: Censor,
  testText: string,
  controlText: string,
  scope: SimScope,
  time: number,
  deadlineMs = 60_000,
): PairOutcome {
  const one = (text: string) => {
    const m: SimMessage = { text, time, ...scope };
    const d = censor.deliver(m);
    const status: keyof ArmCounts =
      d.status === 'delivered' && (d.latencyMs ?? 0) > deadlineMs ? 'delayed' : d.status;
    return { status, latencyMs: d.latencyMs };
  };
  const t = one(testText);
  const c = one(controlText);
  return { test: t.status, control: c.status, testLatencyMs: t.latencyMs, controlLatencyMs: c.latencyMs };
}

/** Add one pair to an evidence record (mutates and returns it). */
export function addPair(e: Evidence, pair: PairOutcome): Evidence {
  e.test[pair.test] += 1;
  e.control[pair.control] += 1;
  const lt = e.latencyTestMs as number[];
  const lc = e.latencyControlMs as number[];
  if (pair.testLatencyMs !== undefined && pair.test !== 'missing' && pair.test !== 'rejected') {
    lt.push(pair.testLatencyMs);
  }
  if (pair.controlLatencyMs !== undefined && pair.control !== 'missing' && pair.control !== 'rejected') {
    lc.push(pair.controlLatencyMs);
  }
  return e;
}

export function emptyEvidence(): Evidence {
  return { test: emptyArm(), control: emptyArm(), latencyTestMs: [], latencyControlMs: [] };
}

export interface CollectOptions {
  pairs: number;
  start: number;
  spacingMs: number;
  deadlineMs?: number;
}

/** Send `pairs` paired canaries, one pair per window, and return the evidence. */
export function collectEvidence(
  censor: Censor,
  testText: string,
  controlText: string,
  scope: SimScope,
  o: CollectOptions,
): Evidence {
  const e = emptyEvidence();
  for (let i = 0; i < o.pairs; i++) {
    addPair(e, sendPair(censor, testText, controlText, scope, o.start + i * o.spacingMs, o.deadlineMs));
  }
  return e;
}
