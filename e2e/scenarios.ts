/**
 * The scenario table: censorship behaviours the whole chain must measure correctly,
 * testbed → probes → collector → outcomes in Postgres. Data only: each row is a testbed
 * policy (design.md format), the term sets a campaign tests (each with a matched
 * control), and the outcome the policy implies per recipient region and conversation
 * kind. `run-scenario.ts` runs a row; `scenarios.test.ts` runs the table per adapter.
 *
 * Every row runs on the same small network: one account each in CN, US and AU, a direct
 * chat for each pair of regions, and one group with all three; one probe per region.
 */
import type { OutcomeStatus } from '../protocol/index.ts';

export type ConversationKind = 'direct' | 'group';
/** `REGION:KIND`, with `*` for any region or kind, or `*` alone. */
export type Cell = `${string}:${ConversationKind | '*'}` | '*';
/** Final statuses a row may expect (`pending` and `failed` are never expected). */
export type Expected = Exclude<OutcomeStatus, 'pending' | 'failed'>;
export type OutcomeMatrix = Partial<Record<Cell, Expected>>;

export interface TermExpectation {
  terms: string[];
  /** Outcome of the test canaries, per recipient region and conversation kind. */
  test: OutcomeMatrix;
  /** Outcome of the matched controls (default: delivered everywhere). */
  control?: OutcomeMatrix;
}

export interface LossExpectation {
  /** Term sets the campaign tests (none of them matched by a rule). */
  termSets: string[][];
  /** Share of all outcomes (tests and controls) that must be `missing`; the rest `delivered`. */
  missingRate: number;
  /** Allowed absolute difference from `missingRate`. */
  tolerance: number;
  /** At least this many outcomes, so the rate means something. */
  minOutcomes: number;
}

export interface Scenario {
  id: string;
  title: string;
  /** The testbed policy; a function when it depends on the run (outage window, delay past the deadline). */
  policy: Record<string, unknown> | ((run: RunContext) => Record<string, unknown>);
  expect: TermExpectation[] | LossExpectation;
  /** Testbed seed (draws for probability and background loss). */
  seed?: number;
}

export interface RunContext {
  /** When the row starts (epoch ms). */
  startMs: number;
  /** The canaries' deadline in this run (adapters differ in how fast they send). */
  deadlineSeconds: number;
}

export const REGIONS = { CN: 1, US: 1, AU: 1 } as const;
const regions = ['CN', 'US', 'AU', 'TW'];
/** Terms no rule of the row mentions. */
export const BENIGN = ['图书馆'];
const benign: TermExpectation = { terms: BENIGN, test: { '*': 'delivered' } };

/** Delay rules hold a message this much longer than the canaries' deadline. */
export const DELAY_PAST_DEADLINE_MS = 4000;
export const NOTICE = 'This message contains inappropriate content';

export const SCENARIOS: Scenario[] = [
  {
    id: 'silent-drop',
    title: 'silent drop: nobody receives it, the sender sees "sent"',
    policy: { regions, rules: [{ id: 'drop', match: { any: ['六四'] }, action: 'drop' }] },
    expect: [{ terms: ['六四'], test: { '*': 'missing' } }, benign],
  },
  {
    id: 'delay',
    title: 'delay: held past the deadline, then delivered',
    policy: ({ deadlineSeconds }) => ({
      regions,
      rules: [
        {
          id: 'slow',
          match: { any: ['维权'] },
          action: 'delay',
          delay_ms: deadlineSeconds * 1000 + DELAY_PAST_DEADLINE_MS,
        },
      ],
    }),
    expect: [{ terms: ['维权'], test: { '*': 'delayed' } }, benign],
  },
  {
    id: 'notice',
    title: 'notice: the sender is told, nobody receives it',
    policy: {
      regions,
      rules: [{ id: 'overt', match: { any: ['法轮功'] }, action: 'notice', notice: NOTICE }],
    },
    expect: [{ terms: ['法轮功'], test: { '*': 'rejected' } }, benign],
  },
  {
    id: 'replace',
    title: 'replace: China-registered recipients get a masked copy',
    policy: {
      regions,
      rules: [
        {
          id: 'mask',
          match: { any: ['习近平'] },
          action: 'replace',
          replace_with: '***',
          scope: { recipient_region: ['CN'] },
        },
      ],
    },
    expect: [{ terms: ['习近平'], test: { 'CN:*': 'altered', '*': 'delivered' } }, benign],
  },
  {
    id: 'combination',
    title: 'combination (all): both terms together are dropped, each alone passes',
    policy: {
      regions,
      rules: [{ id: 'combo', match: { all: ['709', '律师'] }, action: 'drop' }],
    },
    expect: [
      { terms: ['709', '律师'], test: { '*': 'missing' } },
      { terms: ['709'], test: { '*': 'delivered' } },
      { terms: ['律师'], test: { '*': 'delivered' } },
    ],
  },
  {
    id: 'per-recipient-group',
    title: 'per recipient in a group: the CN member misses it, the others get it; direct chats pass',
    policy: {
      regions,
      rules: [
        {
          id: 'group-cn',
          match: { any: ['六四'] },
          action: 'drop',
          scope: { conversation: 'group', recipient_region: ['CN'] },
        },
      ],
    },
    expect: [{ terms: ['六四'], test: { 'CN:group': 'missing', '*': 'delivered' } }, benign],
  },
  {
    id: 'outage',
    title: 'outage: nothing is delivered, tests and controls alike',
    policy: ({ startMs }) => ({
      regions,
      outages: [
        { from: new Date(startMs - 60_000).toISOString(), to: new Date(startMs + 30 * 60_000).toISOString() },
      ],
      rules: [{ id: 'drop', match: { any: ['六四'] }, action: 'drop' }],
    }),
    expect: [
      { terms: ['六四'], test: { '*': 'missing' }, control: { '*': 'missing' } },
      { terms: BENIGN, test: { '*': 'missing' }, control: { '*': 'missing' } },
    ],
  },
  {
    id: 'background-loss',
    title: 'background loss: a seeded share of all messages vanishes, keyword or not',
    policy: { regions, background: { loss: 0.3 } },
    seed: 20_260_604,
    expect: {
      termSets: [['图书馆'], ['自行车'], ['音乐会']],
      missingRate: 0.3,
      tolerance: 0.15,
      minOutcomes: 60,
    },
  },
];

export function termSetsOf(s: Scenario): string[][] {
  return Array.isArray(s.expect) ? s.expect.map((e) => e.terms) : s.expect.termSets;
}

/** The expected status for one outcome (undefined: the row does not say). */
export function expectedStatus(
  row: TermExpectation,
  kind: 'test' | 'control',
  recipientRegion: string,
  conversationKind: ConversationKind,
): Expected | undefined {
  const matrix = kind === 'test' ? row.test : (row.control ?? { '*': 'delivered' });
  return (
    matrix[`${recipientRegion}:${conversationKind}`] ??
    matrix[`${recipientRegion}:*`] ??
    matrix[`*:${conversationKind}`] ??
    matrix['*']
  );
}
