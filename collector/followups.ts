/**
 * Follow-up canaries that spend fewer messages: isolation of the minimal term combination(s)
 * behind a suppressed multi-term finding (`isolate` and `screen` campaigns), and screening of
 * a `screen` campaign's term sets packed into messages (group testing). Both are driven by the
 * stateless steppers of collector/analysis (`isolationStep`, `screeningStep` through `resumeScreening`): every round they
 * ask for is stored (followup_steps: messages, the pair ids sent for them, and their results
 * once final), so the stepper replays the log after a restart and nothing lives in memory.
 *
 * Each message goes out as a test canary with its matched control (same template, sender,
 * conversation and window) in the run's scope: a conversation of that kind, a sender of that
 * region, read at the recipients of that region. A message's result is `positive` when the
 * test did not arrive intact in time at those recipients while the control did, `negative`
 * when the test arrived, `void` when the control failed (outage) or nothing was sent.
 *
 * Done isolations add their minimal combinations to the campaign's term sets
 * (derived_term_sets): rounds then test them like listed sets until their findings settle,
 * and findings report them as the minimal term sets. A done screen stores a settled `none`
 * finding, in its scope, for every listed set it cleared (through findings.ts
 * `writeScreenClearances`, the one writer of findings), so rounds never
 * send those one per message; suppressed single sets become derived sets for the rounds to
 * judge, suppressed multi-term sets and cross-set groups go to isolation, and the sets it
 * could not resolve are left to the rounds (collector/rounds.ts holds listed sets back in a
 * scope until its screen is over).
 */

import type { Logger } from 'pino';
import {
  DEFAULT_SEQUENTIAL_DESIGN,
  type IsolationResult,
  isolationStep,
  type MessageRequest,
  type ProbeResult,
  type RoundRecord,
  resumeScreening,
  type ScreeningOptions,
  type ScreeningResult,
} from './analysis/index.ts';
import { budgetLeft, nextCheckin } from './capacity.ts';
import { DEFAULT_CHECKIN_INTERVAL_MS } from './config.ts';
import { type SelectedConversation, selectConversations, termSetsOf } from './db/campaigns.ts';
import { insertCanaries } from './db/canaries.ts';
import { senderCheckins, senderLoads } from './db/capacity.ts';
import {
  campaignsToJudge,
  derivedTermSets,
  type FindingScope,
  findingStates,
  isolationCandidates,
  tryLockCampaign,
} from './db/findings.ts';
import {
  type FollowupCampaign,
  type FollowupRun,
  type FollowupStep,
  failFollowup,
  finishFollowup,
  followupCampaign,
  followupRunning,
  followupSteps,
  insertDerivedTermSet,
  insertFollowup,
  insertFollowupStep,
  type OpenFollowupStep,
  openFollowupSteps,
  type PairOutcome,
  pairOutcomesAt,
  resendFollowupStep,
  runningFollowupRuns,
  saveStepResults,
} from './db/followups.ts';
import type { Db, Queryable } from './db/open.ts';
import { isFindingVerdict, sweepRules, writeScreenClearances } from './findings.ts';
import { findingKey, isolateKey, screenKey, termSetKey } from './keys.ts';
import { avoidList, planRound } from './planning/canaries.ts';
import { createRng, pick } from './planning/rng.ts';
import { conversationScopes, toCanaryRows } from './rounds.ts';
import { yielder } from './yield.ts';

export interface FollowupOptions {
  /** Results are read once the deadline passed this long ago (default: the campaign's deadline). */
  graceMs?: number;
  /**
   * A message with no outcome this long after its deadline (never sent, sender down) is `void`;
   * a step with a canary no probe took is sent again first, up to twice (`neverSent`). Default:
   * three deadlines, at least 10 s. (A fixed 60 s made every unsent follow-up message of a
   * short-deadline campaign stall its isolation run for 20 deadlines.)
   */
  lostAfterMs?: number;
  /**
   * The collector's check-in interval (default 60 s, its own default): a step's messages are due
   * from their sender's probe's next check-in, estimated from its last check-in and the gap it
   * keeps, counted up to three of these intervals (`nextCheckin`, decision 024). Probes hear of
   * canaries only at check-in; a message due at once waited up to a check-in gap for it, past a
   * short deadline.
   */
  checkinIntervalMs?: number;
  /**
   * Screens clear a set only with the second pass's evidence (`SCREEN_CLEARANCE`, decision 024):
   * as strong as a sequential `none`, so a partial drop is not cleared by the one pack it missed.
   * Default true (decision 038); false clears a set on the first pass's one intact pack.
   */
  screenClearance?: boolean;
}

/**
 * A step's messages without a control of their own share one control for every this many a
 * sender sends (the stepper's contract, collector/analysis/resumable.ts: ceil(n / 10)).
 */
const SHARED_CONTROL_EVERY = 10;

/** How often a step no probe took in time is sent again before its messages are read as voids. */
const MAX_STEP_RESENDS = 2;

/**
 * Per campaign, the longest of its follow-up transactions in this process's last sweep (ms): a
 * step planned now is seen by check-ins once its transaction commits, about this much later.
 */
const followupsTook = new Map<string, number>();

/** The sweep's step: start isolations and screens, read results, send the next rounds. */
export async function advanceFollowups(
  db: Db,
  now: Date,
  options: FollowupOptions = {},
  log?: Logger,
): Promise<void> {
  const began = performance.now();
  const campaigns = await campaignsToJudge(db, now, 24 * 3600_000);
  // campaigns no longer judged leave the map (one number each, but a long-running collector sees many)
  const current = new Set(campaigns.map((c) => c.id));
  for (const id of followupsTook.keys()) if (!current.has(id)) followupsTook.delete(id);
  for (const c of campaigns) {
    if (c.mode === 'monitor') continue;
    let longest = 0;
    /** A transaction under the campaign's follow-up lock; undefined where another collector holds it. */
    const locked = async <T>(work: (tx: Queryable) => Promise<T>): Promise<T | undefined> => {
      const txBegan = performance.now();
      try {
        return await db.transaction(async (tx) =>
          (await tryLockCampaign(tx, c.id, 'followups')) ? work(tx) : undefined,
        );
      } finally {
        longest = Math.max(longest, performance.now() - txBegan);
      }
    };
    let started: { info: FollowupCampaign; runs: FollowupRun[] } | undefined;
    try {
      started = await locked(async (tx) => {
        const info = await followupCampaign(tx, c.id);
        if (!info) return undefined;
        await startRuns(tx, info);
        return { info, runs: await runningFollowupRuns(tx, info.id) };
      });
    } catch (err) {
      log?.error({ err, campaign: c.id }, 'follow-up step failed');
    }
    if (started) {
      const { info } = started;
      let ready: FollowupRun[] = started.runs;
      try {
        ready = await runsWithWork(
          db,
          info,
          started.runs,
          new Date(now.getTime() + (performance.now() - began)),
          options,
        );
      } catch (err) {
        log?.error({ err, campaign: c.id }, 'follow-up steps could not be read; visiting every run');
      }
      // One transaction a run, not one for all: PGlite serves one caller at a time, so while a
      // transaction is open the probes' check-ins and reports wait. One for all 76 runs of a
      // 500-set campaign held them 2-6 s a sweep, past the 3-s deadlines of canaries due then
      // (decision 024, 2026-12-05, afternoon).
      for (const run of ready) {
        const runBegan = performance.now();
        // each run plans from `now` plus the time the runs before it took, so a step planned
        // late in a long sweep does not hand out canaries already due or past their deadline;
        // check-ins see it once its transaction commits
        const at = now.getTime() + (runBegan - began);
        const visibleAt = at + (followupsTook.get(c.id) ?? 0);
        try {
          await locked(async (tx) => {
            if (await followupRunning(tx, run.id))
              await advanceRun(tx, info, run, new Date(at), visibleAt, options, log);
          });
        } catch (err) {
          // one run's failure does not hold the others back
          log?.error({ err, campaign: c.id, followup: run.id }, 'follow-up step failed');
        }
      }
    }
    followupsTook.set(c.id, longest);
  }
}

/**
 * The runs with something to do now: a step to plan (no step without results), a step no probe
 * took to send again, or a step whose results are final. The rest wait for outcomes or for time
 * to pass, and `advanceRun` would only read their outcomes again, in a transaction of their own
 * that holds every check-in and report back (PGlite serves one caller at a time): at 500 term
 * sets, 76 runs a sweep took 2–4 s of the database, most of them to find nothing to do
 * (decision 024, "Check-ins do not wait for planning"). Read in one query for the steps and one a
 * recipient region for their outcomes, outside any transaction: a run judged idle here is visited
 * at the next sweep; one judged ready is read again under the lock.
 */
async function runsWithWork(
  db: Db,
  c: FollowupCampaign,
  runs: readonly FollowupRun[],
  now: Date,
  options: FollowupOptions,
): Promise<FollowupRun[]> {
  const open = new Map<string, OpenFollowupStep>();
  // the first step without results is the one advanceRun reads (steps in order)
  for (const s of await openFollowupSteps(
    db,
    runs.map((r) => r.id),
  ))
    if (!open.has(s.followupId)) open.set(s.followupId, s);
  const byRegion = groupBy(
    runs.filter((r) => open.has(r.id)),
    (r) => r.scope.recipient_region,
  );
  const found = new Map<string, PairOutcome[]>();
  for (const [region, list] of byRegion) {
    const pairs = list.flatMap((r) => open.get(r.id)?.pairIds ?? []);
    for (const [pair, rows] of groupBy(await pairOutcomesAt(db, pairs, region), (f) => f.pairId))
      found.set(`${region}\u0000${pair}`, rows);
  }
  const { graceMs } = sweepRules(options, c);
  const lostAfterMs = lostAfter(options, c);
  return runs.filter((r) => {
    const s = open.get(r.id);
    if (!s) return true;
    const mine = s.pairIds.flatMap((p) => found.get(`${r.scope.recipient_region}\u0000${p}`) ?? []);
    if (s.resends < MAX_STEP_RESENDS && neverSent(mine, now)) return true;
    return stepFinal(mine, s.pairIds, now, graceMs, lostAfterMs);
  });
}

/** How long after its deadline a message with no outcome is `void` (`FollowupOptions.lostAfterMs`). */
function lostAfter(options: FollowupOptions, c: FollowupCampaign): number {
  return options.lostAfterMs ?? Math.max(10_000, 3 * c.deadlineSeconds * 1000);
}

/** Isolation for every settled multi-term finding that is minimal; one screen per scope for screen campaigns. */
async function startRuns(tx: Queryable, c: FollowupCampaign): Promise<void> {
  const candidates = await isolationCandidates(tx, c.id);
  if (candidates.length > 0) {
    const listed = await termSetsOf(tx, c.termListIds);
    const derived = new Set((await derivedTermSets(tx, c.id)).map(termSetKey));
    const tested = new Set([...listed.map(termSetKey), ...derived]);
    const byKey = await findingStates(tx, c.id);
    for (const f of candidates) {
      if (!isFindingVerdict(f.verdict)) continue;
      // A set isolation derived is a minimal combination already: isolating it again would only
      // re-send its subsets.
      if (derived.has(termSetKey(f.termSet))) continue;
      const key = isolateKey(f.termSet, f.scope);
      const plan = isolationNeed(f.termSet, f.scope, tested, byKey);
      if (plan === 'wait') continue;
      if (plan === 'minimal') {
        // Every set one term smaller is tested by the rounds and settled `none` in this scope:
        // the set is its own minimal combination, no follow-up message is needed.
        const result: IsolationResult & { reason: string } = {
          combinations: [f.termSet],
          truncated: false,
          reruns: 0,
          reason: 'every proper subset one term smaller is tested and settled none in this scope',
        };
        await insertFollowup(tx, {
          campaignId: c.id,
          procedure: 'isolate',
          input: f.termSet,
          key,
          scope: f.scope,
          done: result,
        });
        continue;
      }
      await insertFollowup(tx, {
        campaignId: c.id,
        procedure: 'isolate',
        input: f.termSet,
        scope: f.scope,
        key,
      });
    }
  }
  if (c.mode !== 'screen') return;
  const sets = await termSetsOf(tx, c.termListIds);
  if (sets.length < 2) return;
  for (const scope of conversationScopes(await selectConversations(tx, c.conversationSelection))) {
    await insertFollowup(tx, {
      campaignId: c.id,
      procedure: 'screen',
      input: sets,
      scope,
      key: screenKey(scope),
    });
  }
}

/**
 * Whether a suppressed multi-term set needs an isolation run in `scope`. When every subset one
 * term smaller is itself a tested term set (listed or derived), the rounds measure those
 * subsets anyway: once all are settled `none` the set is minimal (`minimal`, assuming the
 * censor's rules are monotone: a set that contains a trigger triggers); while any is open the
 * run would only repeat that work (`wait`; if a subset settles suppressed, the set is no longer
 * minimal and never becomes a candidate). Otherwise (some subset untested, or settled on
 * another verdict such as `inconclusive`) isolation runs (`run`).
 */
export function isolationNeed(
  termSet: readonly string[],
  scope: FindingScope,
  tested: ReadonlySet<string>,
  findings: ReadonlyMap<string, { verdict: string; settled: boolean }>,
): 'run' | 'wait' | 'minimal' {
  if (termSet.length < 2) return 'minimal';
  const subsets = termSet.map((_, i) => termSet.filter((_t, j) => j !== i));
  if (!subsets.every((sub) => tested.has(termSetKey(sub)))) return 'run';
  const found = subsets.map((sub) => findings.get(findingKey(sub, scope)));
  if (!found.every((f) => f?.settled === true)) return 'wait';
  return found.every((f) => f?.verdict === 'none') ? 'minimal' : 'run';
}

async function advanceRun(
  tx: Queryable,
  c: FollowupCampaign,
  run: FollowupRun,
  now: Date,
  visibleAt: number,
  options: FollowupOptions,
  log?: Logger,
): Promise<void> {
  const steps = await followupSteps(tx, run.id);
  const { graceMs } = sweepRules(options, c);
  const timing = { visibleAt, checkinIntervalMs: options.checkinIntervalMs ?? DEFAULT_CHECKIN_INTERVAL_MS };
  for (const s of steps) {
    if (s.results) continue;
    const lostAfterMs = lostAfter(options, c);
    const found = await pairOutcomesAt(tx, s.pairIds, run.scope.recipient_region);
    if (s.resends < MAX_STEP_RESENDS && neverSent(found, now)) {
      // no probe took some of the step's canaries before their deadline: that says nothing of
      // the terms, so the step is sent again rather than read as voids (decision 024)
      const again = await sendMessages(tx, c, run, s.step, s.messages, now, {
        ...timing,
        attempt: s.resends + 1,
      });
      if (again === 'wait') return;
      if (again) {
        log?.info(
          { followup: run.id, step: s.step, scope: run.scope },
          'follow-up step sent again: not taken by a probe in time',
        );
        await resendFollowupStep(tx, run.id, s.step, again);
        return;
      }
    }
    const results = readResults(found, s.pairIds, s.messages, now, graceMs, lostAfterMs);
    if (!results) return; // the latest round is not final yet
    await saveStepResults(tx, run.id, s.step, results);
    s.results = results;
  }
  const logRecords: RoundRecord[] = steps.map((s) => ({ messages: s.messages, results: s.results ?? [] }));
  const screenOptions = SCREEN_OPTIONS(c.seed, { clearance: options.screenClearance !== false });
  let step: Awaited<ReturnType<typeof isolationStep>> | Awaited<ReturnType<typeof resumeScreening>>;
  try {
    step =
      run.procedure === 'isolate'
        ? await isolationStep(run.input as string[], logRecords)
        : await resumeScreening(run.input as string[][], logRecords, screenOptions, [
            // a screen begun before cross-set searches asked their first questions at once
            { ...screenOptions, crossSetOneRound: false },
          ]);
  } catch (err) {
    log?.warn({ err, followup: run.id }, 'follow-up run failed');
    await failFollowup(tx, run.id, (err as Error).message);
    return;
  }
  if (step.kind === 'done') {
    await finish(tx, c, run, step.result, steps);
    return;
  }
  const pairIds = await sendMessages(tx, c, run, step.round, step.messages, now, timing);
  if (pairIds === 'wait') {
    log?.debug({ followup: run.id, scope: run.scope }, "follow-up step waits for the senders' send budget");
    return;
  }
  if (!pairIds) {
    log?.warn({ followup: run.id, scope: run.scope }, 'no conversation and sender for the follow-up scope');
    await failFollowup(tx, run.id, 'no conversation in scope');
    return;
  }
  await insertFollowupStep(tx, run.id, step.round, step.messages, pairIds);
}

/**
 * The screen here is triage, not the verdict: a set it calls suppressed is judged again by the
 * rounds (single sets, as derived sets) or isolated (multi-term sets and cross-set groups), each
 * with controls and the sequential design. So one positive is enough to split down to a set
 * (`confirmSet: 1`; a lost message only costs that set a round of paired tests). What it
 * publishes, a clearance, is a settled `none` finding, so it must be as strong as the sequential
 * design's `none`: a rule that fires with probability p escapes one intact pack with probability
 * 1 − p, so the sets the first pass cleared are packed again and cleared only once their packs'
 * deliveries make a suppression rate of the design's margin or more as unlikely as its beta
 * (`clearance`: 11 intact packs without a positive at margin 0.2 and beta 0.1; decision 024).
 */
export const SCREEN_OPTIONS = (seed: string, o: { clearance?: boolean } = {}) =>
  ({
    shuffleSeed: seedNumber(seed),
    confirmSet: 1,
    // a round is a follow-up step here (seconds): a cross-set search asks its first round of
    // questions at once, not one a step
    crossSetOneRound: true,
    ...(o.clearance ? { clearance: SCREEN_CLEARANCE } : {}),
  }) satisfies Partial<ScreeningOptions>;

/**
 * The clearance rule of the sequential design's `none` (decision 024), the collector's default
 * since decision 038: `silentdrop evaluate` settles 20, 100 and 500 term sets with it, P = R = 1.
 * `FollowupOptions.screenClearance: false` (a deployed collector: SILENTDROP_SCREEN_CLEARANCE=false,
 * collector/config.ts) goes back to one intact pack.
 */
export const SCREEN_CLEARANCE = {
  margin: DEFAULT_SEQUENTIAL_DESIGN.margin,
  beta: DEFAULT_SEQUENTIAL_DESIGN.beta,
};

const seedNumber = (seed: string) =>
  [...seed].reduce((h, ch) => (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0, 7);

async function finish(
  tx: Queryable,
  c: FollowupCampaign,
  run: FollowupRun,
  result: IsolationResult | ScreeningResult,
  steps: readonly FollowupStep[],
): Promise<void> {
  await finishFollowup(tx, run.id, result);
  let derived: string[][] = [];
  if (run.procedure === 'isolate') derived = (result as IsolationResult).combinations;
  else {
    const r = result as ScreeningResult;
    const sets = run.input as string[][];
    const listed = new Set(sets.map(termSetKey));
    // sets suppressed alone with more than one term, and cross-set groups, go on to isolation;
    // a set whose subsets one term smaller are all listed is not: the rounds judge it and those
    // subsets anyway, and isolation starts from its finding if it is still needed (`isolationNeed`)
    for (const i of r.suppressed) {
      const set = sets[i];
      if (set && set.length > 1 && isolationNeed(set, run.scope, listed, new Map()) === 'run')
        await insertFollowup(tx, {
          campaignId: c.id,
          procedure: 'isolate',
          input: set,
          scope: run.scope,
          key: isolateKey(set, run.scope),
        });
      else if (set && set.length === 1) derived.push(set);
    }
    for (const group of r.crossSet) {
      const terms = [...new Set(group.flatMap((i) => sets[i] ?? []))];
      await insertFollowup(tx, {
        campaignId: c.id,
        procedure: 'isolate',
        input: terms,
        scope: run.scope,
        key: isolateKey(terms, run.scope),
      });
    }
    await writeScreenClearances(tx, c.id, run, sets, r, steps);
  }
  for (const combo of derived) await insertDerivedTermSet(tx, c.id, combo, run.id);
}

/**
 * The shortest window (whole seconds up to an hour, plus the deadline) in which the scope's
 * senders have budget for every canary of the step (`canaries`: tests and controls), with each
 * sender's budget there; undefined when even an hour is not enough (the step waits for a later
 * sweep). Each sender's window opens when its probe hears of the step (`from`: its next
 * check-in). Follow-up messages are planned within the senders' send budget like rounds
 * (docs/decisions/014).
 *
 * The window doubles from 1 s until it holds the step, reading the senders' loads once per
 * try; then the shortest whole second between the last two tries is found by halving, against
 * the longer window's loads (which count at least as many competing sends: never too few). A
 * step that needs 9 s takes 9, not 16: the step, and the screen it belongs to, end sooner.
 */
async function followupBudget(
  tx: Queryable,
  from: ReadonlyMap<string, number>,
  canaries: number,
  now: Date,
  deadlineSeconds: number,
): Promise<{ spreadSeconds: number; left: Map<string, number> } | undefined> {
  const ids = [...from.keys()];
  const latest = Math.max(now.getTime(), ...from.values());
  for (let spreadSeconds = 1; spreadSeconds <= 3600; spreadSeconds *= 2) {
    // what is planned from now to the latest window's end competes (a little more than one
    // sender's own window: counted against it, never for it)
    const loads = await senderLoads(
      tx,
      ids,
      now,
      new Date(latest + (spreadSeconds + deadlineSeconds) * 1000),
    );
    const leftIn = (seconds: number) => {
      const span = (seconds + deadlineSeconds) * 1000;
      return new Map(
        ids.map((id) => {
          const start = from.get(id) ?? now.getTime();
          return [
            id,
            budgetLeft(loads.get(id) ?? { sentSinceReport: 0, outstanding: 0 }, start, start + span),
          ] as const;
        }),
      );
    };
    const fits = (left: ReadonlyMap<string, number>) =>
      [...left.values()].reduce((a, b) => a + b, 0) >= canaries;
    if (!fits(leftIn(spreadSeconds))) continue;
    let short = Math.floor(spreadSeconds / 2);
    let long = spreadSeconds;
    while (long - short > 1) {
      const mid = Math.floor((short + long) / 2);
      if (fits(leftIn(mid))) long = mid;
      else short = mid;
    }
    return { spreadSeconds: long, left: leftIn(long) };
  }
  return undefined;
}

/**
 * Plans the step's messages in the run's scope: a test canary per message, with a matched
 * control of its own where the message asks for one (`control`), and for the rest shared
 * controls, one for each sender's first, eleventh, twenty-first … message without one
 * (ceil(n / 10) a sender, as the stepper's contract says: collector/analysis/resumable.ts). The
 * pair ids by message (a shared control carries the pair id of the message it was planned
 * with), undefined when the scope has no conversation and sender, or `wait` when its senders
 * have no budget.
 */
async function sendMessages(
  tx: Queryable,
  c: FollowupCampaign,
  run: FollowupRun,
  round: number,
  messages: MessageRequest[],
  now: Date,
  heard: { visibleAt: number; checkinIntervalMs: number; attempt?: number },
): Promise<string[] | 'wait' | undefined> {
  const s = run.scope;
  // a step sent again draws new pairs, canaries and nonces
  const seed = `${c.seed}:${run.id}:${round}${heard.attempt ? `:${heard.attempt}` : ''}`;
  const convs = (await selectConversations(tx, c.conversationSelection)).filter(
    (v) =>
      v.platform === s.platform &&
      v.kind === s.conversation_kind &&
      v.members.some((m) => m.active && m.region === s.sender_region) &&
      v.members.some((m) => m.region === s.recipient_region),
  );
  const rng = createRng(seed);
  const all = await termSetsOf(tx, c.termListIds);
  const options = convs.flatMap((v) =>
    v.members
      .filter((x) => x.active && x.region === s.sender_region)
      .filter((x) => v.members.some((r) => r.handle !== x.handle && r.region === s.recipient_region))
      .map((x) => ({ conv: v, sender: x.handle, accountId: x.accountId })),
  );
  if (options.length === 0) return undefined;
  // each sender's messages are due from the check-in at which its probe hears of them
  const ids = [...new Set(options.map((o) => o.accountId))];
  const checkins = await senderCheckins(tx, ids);
  const visible = Math.max(now.getTime(), heard.visibleAt);
  const from = new Map(
    ids.map(
      (id) => [id, nextCheckin(checkins.get(id), now.getTime(), visible, heard.checkinIntervalMs)] as const,
    ),
  );
  const uncontrolled = messages.filter((m) => !m.control).length;
  const canaries =
    messages.length +
    (messages.length - uncontrolled) +
    (uncontrolled > 0 ? Math.ceil(uncontrolled / SHARED_CONTROL_EVERY) + ids.length - 1 : 0);
  const budget = await followupBudget(tx, from, canaries, now, c.deadlineSeconds);
  if (!budget) return 'wait';
  const pairIds: string[] = [];
  const inserts = [];
  /** Messages given to each sender account so far: its sends are spread evenly over the window. */
  const given = new Map<string, number>();
  /** Messages without a control of their own given to each sender so far. */
  const bare = new Map<string, number>();
  const plans = messages.map((m) => {
    // the sender with the most budget left (ties at random), so the step spreads over the scope's senders
    const most = Math.max(...options.map((o) => budget.left.get(o.accountId) ?? 0));
    const choice = pick(
      rng,
      options.filter((o) => (budget.left.get(o.accountId) ?? 0) === most),
    );
    const b = bare.get(choice.accountId) ?? 0;
    if (!m.control) bare.set(choice.accountId, b + 1);
    const withControl = m.control || b % SHARED_CONTROL_EVERY === 0;
    budget.left.set(choice.accountId, most - (withControl ? 2 : 1));
    const k = given.get(choice.accountId) ?? 0;
    given.set(choice.accountId, k + 1);
    return { m, choice, k, withControl };
  });
  // built once for the step: every message's plan avoids the whole list (thousands of terms)
  const avoid = avoidList(all.flat());
  const tick = yielder();
  for (const [i, { m, choice, k, withControl }] of plans.entries()) {
    await tick();
    const conv: SelectedConversation = choice.conv;
    const share = given.get(choice.accountId) ?? 1;
    const plan = planRound({
      campaignId: c.id,
      roundAt: new Date(
        (from.get(choice.accountId) ?? now.getTime()) + Math.floor((k / share) * budget.spreadSeconds * 1000),
      ),
      seed: `${seed}:${i}`,
      termSets: [m.terms],
      conversations: [
        {
          ref: conv.ref,
          kind: conv.kind,
          platform: conv.platform,
          members: conv.members.map((x) => ({ handle: x.handle, region: x.region })),
        },
      ],
      senders: { eligible: [choice.sender] },
      spreadSeconds: 1,
      deadlineSeconds: c.deadlineSeconds,
      avoid,
    });
    const rowsToInsert = toCanaryRows(plan, null, [conv]).filter((r) => withControl || r.kind === 'test');
    const pair = rowsToInsert[0]?.pairId;
    if (!pair) return undefined;
    pairIds.push(pair);
    inserts.push(...rowsToInsert);
  }
  await insertCanaries(tx, inserts);
  return pairIds;
}

/**
 * Per pair (message) the result at the scope's recipients, or undefined while any is not final.
 * A pair whose canaries reached every recipient in the scope in time (`delivered` at each) is
 * final at once: a delivery in time stays one. Any other pair is read once its deadline passed
 * `graceMs` ago (a late-reported receipt still turns `missing` into a delivery), or
 * `lostAfterMs` while an outcome is still pending. A screen step whose messages all arrived is
 * read a deadline and a grace sooner (decision 024), with the same results.
 *
 * A message with a control of its own (`control`) is `void` unless that control reached every
 * recipient; one without is `void` when most of its sender's shared controls in the step did
 * not (an outage of that sender's path, not the background loss of one control). Otherwise
 * `positive` when its test did not reach a recipient intact in time, `negative` when it did.
 */
function readResults(
  found: readonly PairOutcome[],
  pairIds: readonly string[],
  messages: readonly MessageRequest[],
  now: Date,
  graceMs: number,
  lostAfterMs: number,
): ProbeResult[] | undefined {
  if (!stepFinal(found, pairIds, now, graceMs, lostAfterMs)) return undefined;
  const byPair = groupBy(found, (f) => f.pairId);
  /** Whether a control canary reached every recipient of the scope in time. */
  const reached = (rows: readonly { status: string | null }[]) =>
    rows.length > 0 && rows.every((r) => r.status === 'delivered');
  // the shared controls (of messages without their own), per sender: how many failed of how many
  const shared = new Map<string, { failed: number; all: number }>();
  const place = new Map(pairIds.map((pair, i) => [pair, i]));
  const bareControls = found.filter(
    (f) => f.kind === 'control' && !messages[place.get(f.pairId) ?? -1]?.control,
  );
  for (const rows of groupBy(bareControls, (f) => f.canaryId).values()) {
    const s = shared.get(rows[0]?.senderId ?? '') ?? { failed: 0, all: 0 };
    s.all++;
    if (!reached(rows)) s.failed++;
    shared.set(rows[0]?.senderId ?? '', s);
  }
  return pairIds.map((pair, i) => {
    const mine = byPair.get(pair) ?? [];
    const test = mine.filter((f) => f.kind === 'test');
    let controlsFine: boolean;
    if (messages[i]?.control) controlsFine = reached(mine.filter((f) => f.kind === 'control'));
    else {
      const s = shared.get(test[0]?.senderId ?? '');
      controlsFine = s !== undefined && s.failed * 2 <= s.all;
    }
    if (!controlsFine) return 'void';
    const statuses = test.map((f) => f.status);
    if (statuses.length === 0 || statuses.some((s) => s === null || s === 'pending' || s === 'failed'))
      return 'void';
    return statuses.some((s) => s !== 'delivered') ? 'positive' : 'negative';
  });
}

/**
 * Whether a step was not sent: every canary's deadline has passed and one at least was neither
 * taken by a probe nor reported (a sweep that committed after the check-in it planned for, a probe
 * down). Its messages would read as `void`, and voids spend a screen's or an isolation's patience
 * with a set (a kept 100-set run left 47 sets `unresolved` so); they say nothing of the terms.
 */
/**
 * Whether a step's results are final: every pair arrived everywhere, or its deadline and the
 * grace have passed, and a pair still without an outcome somewhere is past `lostAfterMs` too.
 */
function stepFinal(
  found: readonly PairOutcome[],
  pairIds: readonly string[],
  now: Date,
  graceMs: number,
  lostAfterMs: number,
): boolean {
  const byPair = groupBy(found, (f) => f.pairId);
  for (const pair of pairIds) {
    const mine = byPair.get(pair) ?? [];
    const deadline = Math.max(...mine.map((f) => f.deadlineMs));
    const arrived = mine.length > 0 && mine.every((f) => f.status === 'delivered');
    if (arrived) continue;
    if (now.getTime() < deadline + graceMs) return false;
    const pending = mine.some((f) => f.status === 'pending' || f.status === null);
    if (pending && now.getTime() < deadline + lostAfterMs) return false;
  }
  return true;
}

function neverSent(found: readonly PairOutcome[], now: Date): boolean {
  return (
    found.length > 0 &&
    found.every((f) => f.deadlineMs <= now.getTime()) &&
    found.some((f) => !f.handedOut && f.status === null)
  );
}

/** `items` by `key`, in order (Map.groupBy is Node 21). */
function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}
