/**
 * Campaign rounds: on its cron cadence (UTC) each active campaign gets a round, planned
 * by collector/planning's pure `planRound` and stored with its canaries. Rounds are
 * unique per (campaign, round_at) and their seeds derive from the campaign and time, so
 * several stateless collectors sharing one database materialise each round once.
 * Rounds missed for longer than one horizon (collector down) are not back-filled.
 *
 * Adaptive stopping (campaigns not in `monitor` mode): a term set is sent by a sender
 * region in a conversation only while some scope it reaches (platform, conversation kind,
 * sender region, recipient region) has no settled finding (collector/findings.ts). Term
 * sets isolation derived (minimal combinations) are tested beside the campaign's lists.
 *
 * Send budget (docs/decisions/014): a round plans no more canaries for a sender account than
 * it can send before the round's deadlines (its probe's pacing, limits and budget, less what
 * is planned for it and not sent yet; collector/capacity.ts), and spends that budget on
 * derived sets first, then on the sets closest to a decision. What the senders have left after
 * one pair per open set goes to the scopes deep into their sequential test, several pairs a
 * round (docs/decisions/036). Campaigns due at the same time are planned in an order drawn per
 * round, so campaigns sharing accounts take turns at them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { CronExpressionParser } from 'cron-parser';
import type { Logger } from 'pino';
import type { ConversationSelection } from '../protocol/index.ts';
import { DEFAULT_SEQUENTIAL_DESIGN, type SequentialDesign } from './analysis/index.ts';
import { budgetLeft, dueWhenHeard, nextCheckin } from './capacity.ts';
import {
  activeCampaigns,
  insertRound,
  lastRoundAt,
  type SelectedConversation,
  type SkippedTermSet,
  selectConversations,
  termSetsOf,
} from './db/campaigns.ts';
import type { CanaryInsert } from './db/canaries.ts';
import { followupsRunning, pairsInFlight, pairsSoFar, senderCheckins, senderLoads } from './db/capacity.ts';
import { derivedTermSets, type FindingScope, finishedScreens, settledKeys } from './db/findings.ts';
import type { Db } from './db/open.ts';
import { type FindingsOptions, sweepRules } from './findings.ts';
import { findingKey, type ScopeKey, scopeKey, screenKey, termSetKey } from './keys.ts';
import { type PlanConversation, planRound, type RoundPlan, roundSeed } from './planning/canaries.ts';
import { createRng, RNG_ALGORITHM, shuffled } from './planning/rng.ts';
import { yielder } from './yield.ts';

/** Longest window a round's sends are spread over. */
const MAX_SPREAD_SECONDS = 3600;

/** Cron occurrences in (after, until], UTC. */
export function occurrences(cron: string, after: Date, until: Date, limit = 100): Date[] {
  const it = CronExpressionParser.parse(cron, { tz: 'UTC', currentDate: after });
  const out: Date[] = [];
  while (out.length < limit) {
    const next = it.next().toDate();
    if (next > until) break;
    out.push(next);
  }
  return out;
}

function spreadSeconds(cron: string, roundAt: Date): number {
  const [next] = occurrences(cron, roundAt, new Date(roundAt.getTime() + 366 * 86_400_000), 1);
  const gap = next ? (next.getTime() - roundAt.getTime()) / 1000 : MAX_SPREAD_SECONDS;
  return Math.max(0, Math.min(MAX_SPREAD_SECONDS, Math.floor(gap / 2)));
}

/**
 * planRound's output mapped onto stored canaries (handles → account ids), in round `roundId`
 * or, for a follow-up step's messages, in none (`null`).
 */
export function toCanaryRows(
  plan: ReturnType<typeof planRound>,
  roundId: string | null,
  conversations: SelectedConversation[],
): CanaryInsert[] {
  const conv = new Map(conversations.map((c) => [`${c.platform}\u0000${c.ref}`, c]));
  return plan.canaries.map((p) => {
    const c = conv.get(`${p.conversation.platform}\u0000${p.conversation.ref}`);
    const sender = c?.members.find((m) => m.handle === p.sender.handle);
    if (!c || !sender) throw new Error(`planned sender ${p.sender.handle} is not in ${p.conversation.ref}`);
    return {
      id: p.canaryId,
      campaignId: plan.campaignId,
      roundId,
      kind: p.kind,
      pairId: p.pairId,
      termSet: p.testTerms,
      carriedTerms: p.terms,
      text: p.text,
      nonce: p.nonce,
      senderAccountId: sender.accountId,
      conversationId: c.id,
      sendAt: new Date(p.sendAt),
      deadlineAt: new Date(p.deadlineAt),
      templateId: p.templateId,
      templateVersion: String(p.templateVersion),
      seed: plan.seed,
    };
  });
}

/** How far ahead a planning runs, beside its clock and horizon. */
export interface PlanningAt {
  /**
   * How long before `now + horizonMs` planning starts (`RoundPlanner` passes how long planning
   * has lately taken): a round is then stored by the time its probes are told of it, not after.
   */
  leadMs?: number;
}

/**
 * Materialises every round due by `now + horizonMs + leadMs`; returns how many rounds and
 * canaries were created, and the longest any one round took to plan and store (`slowestMs`, the
 * first counting the campaigns' lookup). `findings` is what the sweep judges with (its
 * sequential design and grace): a round tops scopes up to that design's looks and counts pairs in
 * flight till that grace has passed. `horizonMs` is the collector's check-in interval: probes
 * hear of canaries at check-in, and no canary is due before its sender's probe can hear of it
 * (`dueWhenHeard`).
 */
export async function materialiseDueRounds(
  db: Db,
  now: Date,
  horizonMs: number,
  log?: Logger,
  findings: Pick<FindingsOptions, 'design' | 'graceMs'> = {},
  at: PlanningAt = {},
): Promise<{ rounds: number; canaries: number; slowestMs: number }> {
  const began = performance.now();
  const total = { rounds: 0, canaries: 0, slowestMs: 0 };
  const until = new Date(now.getTime() + horizonMs + Math.max(0, at.leadMs ?? 0));
  // Every campaign's due rounds, earliest first. Campaigns due at the same time go in an order
  // drawn from the campaign and the time: campaigns that share accounts take turns at their
  // send budgets, instead of the one listed first taking them every round.
  const due: { campaign: ActiveCampaign; roundAt: Date; turn: number }[] = [];
  for (const campaign of await activeCampaigns(db, now)) {
    try {
      const last = await lastRoundAt(db, campaign.id);
      const floor = new Date(Math.max(now.getTime() - horizonMs, campaign.startsAt.getTime() - 1));
      const after = last && last > floor ? last : floor;
      for (const roundAt of occurrences(campaign.cadenceCron, after, until)) {
        if (campaign.endsAt && roundAt >= campaign.endsAt) break;
        due.push({ campaign, roundAt, turn: turnOf(campaign.id, roundAt) });
      }
    } catch (err) {
      log?.error({ err, campaign: campaign.id }, 'round planning failed');
    }
  }
  due.sort((a, b) => a.roundAt.getTime() - b.roundAt.getTime() || a.turn - b.turn);
  const failed = new Set<string>();
  let from = began;
  for (const { campaign, roundAt } of due) {
    if (failed.has(campaign.id)) continue;
    try {
      await materialiseRound(campaign, db, roundAt, total, log, findings, {
        now,
        began,
        horizonMs,
      });
    } catch (err) {
      // One campaign that cannot be planned (e.g. a term in a script without controls) must not
      // stop the rest; its later rounds wait for the next sweep.
      failed.add(campaign.id);
      log?.error({ err, campaign: campaign.id }, 'round planning failed');
    }
    const done = performance.now();
    total.slowestMs = Math.max(total.slowestMs, done - from);
    from = done;
  }
  return total;
}

/** How many recent plannings `planningLead` looks at. */
const LEAD_WINDOW = 5;

/**
 * How long before a round's horizon to plan it: the longest a round took to plan and store among
 * the last few plannings that stored one (`recentMs`, oldest first), at most one horizon more.
 */
export function planningLead(recentMs: readonly number[], horizonMs: number): number {
  const longest = Math.max(0, ...recentMs.slice(-LEAD_WINDOW));
  return Math.min(horizonMs, Math.ceil(longest));
}

/**
 * A collector's round planning, asked for at check-ins and by the sweep (docs/decisions/024):
 * - one planning at a time in this process. A check-in starts one and does not wait for it: its
 *   probe hears of the plan at its next check-in, which is when the plan has its canaries due
 *   (`dueWhenHeard`). Before, a check-in waited for the planning it started (seconds at 500 term
 *   sets, up to 25 s under load), and its probe skipped its next check-ins meanwhile;
 * - ahead of time by as long as planning has lately taken (`planningLead`): a round of hundreds
 *   of term sets takes seconds to plan, and a round stored after its time has canaries due before
 *   their probes could hear of them.
 * Several collectors sharing a database each plan this way; the database keeps one of each round.
 */
export class RoundPlanner {
  readonly #db: Db;
  readonly #horizonMs: number;
  readonly #log: Logger | undefined;
  readonly #findings: Pick<FindingsOptions, 'design' | 'graceMs'>;
  #running = false;
  readonly #took: number[] = [];

  /** Whether a planning is in progress (a collector that closes waits for it). */
  get running(): boolean {
    return this.#running;
  }

  constructor(
    db: Db,
    horizonMs: number,
    log?: Logger,
    findings: Pick<FindingsOptions, 'design' | 'graceMs'> = {},
  ) {
    this.#db = db;
    this.#horizonMs = horizonMs;
    this.#log = log;
    this.#findings = findings;
  }

  /** How long before the horizon the next planning starts. */
  get leadMs(): number {
    return planningLead(this.#took, this.#horizonMs);
  }

  /**
   * Plans what is due by `now` plus the horizon and the lead, unless a planning already runs
   * (then returns at once, `null`). Never throws: a failed planning is logged, and the next
   * check-in tries again.
   */
  async plan(now: Date): Promise<{ rounds: number; canaries: number } | null> {
    if (this.#running) return null;
    this.#running = true;
    try {
      const done = await materialiseDueRounds(this.#db, now, this.#horizonMs, this.#log, this.#findings, {
        leadMs: this.leadMs,
      });
      if (done.rounds > 0) {
        this.#took.push(done.slowestMs);
        if (this.#took.length > LEAD_WINDOW) this.#took.shift();
      }
      return { rounds: done.rounds, canaries: done.canaries };
    } catch (err) {
      this.#log?.error({ err }, 'round materialisation failed');
      return { rounds: 0, canaries: 0 };
    } finally {
      this.#running = false;
    }
  }
}

type ActiveCampaign = Awaited<ReturnType<typeof activeCampaigns>>[number];

/** A campaign's place among the campaigns due at `roundAt`: the same on every collector. */
function turnOf(campaignId: string, roundAt: Date): number {
  return createHash('sha256').update(`${campaignId}|${roundAt.toISOString()}`).digest().readUInt32BE(0);
}

async function materialiseRound(
  campaign: ActiveCampaign,
  db: Db,
  roundAt: Date,
  total: { rounds: number; canaries: number },
  log: Logger | undefined,
  findings: Pick<FindingsOptions, 'design' | 'graceMs'>,
  timing: RoundTiming,
): Promise<void> {
  const seed = `${campaign.seed}:${roundSeed(campaign.id, roundAt)}`;
  const listed = await termSetsOf(db, campaign.termListIds);
  const listedKeys = new Set(listed.map(termSetKey));
  const derived = (await derivedTermSets(db, campaign.id)).filter((t) => !listedKeys.has(termSetKey(t)));
  const allSets = [...listed, ...derived];
  const conversations = await selectConversations(
    db,
    campaign.conversationSelection as ConversationSelection,
  );
  const planConversations: PlanConversation[] = conversations.map((c) => ({
    ref: c.ref,
    kind: c.kind,
    platform: c.platform,
    members: c.members.map((m) => ({ handle: m.handle, region: m.region })),
  }));
  const active = conversations.flatMap((c) => c.members.filter((m) => m.active).map((m) => m.handle));
  const settled = campaign.mode === 'monitor' ? new Set<string>() : await settledKeys(db, campaign.id);
  if (campaign.mode === 'screen') {
    for (const k of await screenedKeys(db, campaign.id, listed, conversations)) settled.add(k);
  }
  // planning grows with term sets × conversations: give the event loop a turn every 20 ms
  const tick = yielder();
  const needs = new Map<string[], Map<string, string[]>>();
  const reached = scopesReachedBy(conversations);
  for (const t of allSets) {
    needs.set(t, openSenders(t, conversations, active, settled, reached));
    await tick();
  }
  const open = allSets.filter((t) => (needs.get(t)?.size ?? 0) > 0);
  const spread = spreadSeconds(campaign.cadenceCron, roundAt);
  const budget = await roundBudget(db, conversations, roundAt, spread, campaign.deadlineSeconds);
  const followups = await followupsRunning(db, campaign.id);
  if (followups) {
    // Screens and isolations first: a packed message clears many sets, a round's pair one.
    // Their steps plan within the same budget (followups.ts), so the rounds leave them half.
    for (const [id, n] of budget) budget.set(id, Math.floor(n / 2));
  }
  const pairs = await pairsSoFar(db, campaign.id);
  const derivedKeys = new Set(derived.map(termSetKey));
  const termSets = prioritised(open, {
    rng: createRng(seed),
    scopes: conversationScopes(conversations),
    settled,
    pairs,
    derived: derivedKeys,
  }).slice(0, campaign.termSetsPerRound);
  const common = {
    campaignId: campaign.id,
    roundAt,
    spreadSeconds: spread,
    deadlineSeconds: campaign.deadlineSeconds,
    avoid: allSets.flat(),
  };
  // Per term set (most promising first) and conversation, the sender regions whose scopes are
  // still open, among the senders with budget left for a pair: the round stops growing when the
  // senders cannot send more before the round's deadlines (docs/decisions/014).
  const parts: RoundPlan[] = [];
  let capped = 0;
  const byRef = new Map(conversations.map((c) => [c.ref, c]));
  for (const [i, t] of termSets.entries()) {
    for (const [ref, handles] of needs.get(t) ?? []) {
      await tick();
      const conv = byRef.get(ref);
      if (!conv) continue;
      const idOf = new Map(conv.members.map((m) => [m.handle, m.accountId]));
      const eligible = handles.filter((h) => (budget.get(idOf.get(h) ?? '') ?? 0) >= 2);
      if (eligible.length < handles.length) capped++;
      if (eligible.length === 0) continue;
      const part = planRound({
        ...common,
        seed: `${seed}:${i}:${ref}`,
        termSets: [t],
        conversations: planConversations.filter((c) => c.ref === ref),
        senders: { eligible },
      });
      spend(budget, part, (handle) => idOf.get(handle));
      parts.push(part);
    }
  }
  // What is left goes to the scopes that need more pairs, once no screen or isolation of the
  // campaign runs: those go first (a packed message clears many sets, a round's pair one).
  if (campaign.mode !== 'monitor' && !followups) {
    const rules = sweepRules(findings, campaign);
    const more = await topUp(db, {
      campaignId: campaign.id,
      roundAt,
      // a look counts a pair once its deadline passed by the sweep's grace (the deadline again,
      // by default), on the sweep after that: the grace and another deadline cover both
      judgedAfterMs: rules.graceMs + campaign.deadlineSeconds * 1000,
      design: rules.design,
      termSets,
      needs,
      conversations,
      reached,
      pairs,
      settled,
      planned: parts,
      budget,
      plan: (i, ref, region, k, eligible) =>
        planRound({
          ...common,
          seed: `${seed}:${i}:${ref}:${region}:${k}`,
          termSets: [termSets[i] ?? []],
          conversations: planConversations.filter((c) => c.ref === ref),
          senders: { eligible },
        }),
      tick,
    });
    parts.push(...more);
  }
  if (capped > 0) {
    log?.debug(
      { campaign: campaign.id, roundAt, open: open.length, planned: parts.length, capped },
      "round capped by the senders' send budget",
    );
  }
  const first = planRound({ ...common, seed, termSets: [], conversations: [] });
  const plan: RoundPlan = {
    ...first,
    canaries: parts.flatMap((p) => p.canaries),
    skipped: parts.flatMap((p) => p.skipped),
  };
  for (const s of plan.skipped) {
    if (s.termSet) {
      // A term set that cannot be planned (no control or nonce free of tested terms) is left
      // out of this round; the rest of the round goes on.
      log?.warn(
        {
          campaign: campaign.id,
          roundAt,
          termSet: s.termSet,
          conversation: s.conversation,
          reason: s.reason,
        },
        'term set cannot be planned; skipped in round',
      );
    } else log?.info({ campaign: campaign.id, ...s }, 'conversation skipped in round');
  }
  const roundId = randomUUID();
  const rows = await dueWhenStored(db, toCanaryRows(plan, roundId, conversations), timing);
  const result = await insertRound(
    db,
    {
      id: roundId,
      campaignId: campaign.id,
      roundAt,
      seed,
      rngAlgorithm: RNG_ALGORITHM,
      skipped: skippedTermSets(plan.skipped),
    },
    rows,
  );
  if (result.created) {
    total.rounds++;
    total.canaries += result.canaries;
    log?.info(
      {
        campaign: campaign.id,
        roundAt,
        canaries: result.canaries,
        // when it was stored, against its time: negative when planned ahead
        storedAfterMs: Math.round(storedAt(timing) - roundAt.getTime()),
      },
      'round materialised',
    );
  }
}

/**
 * When a plan is made: the planning clock, the moment planning began (performance.now()), and the
 * check-in interval.
 */
interface RoundTiming {
  now: Date;
  began: number;
  horizonMs: number;
}

/** About now on the planning clock: its time when planning began plus the time planning took. */
function storedAt(timing: RoundTiming): number {
  return timing.now.getTime() + (performance.now() - timing.began);
}

/**
 * The round's canaries, none due before its sender's probe can hear of them (`dueWhenHeard`):
 * the plan is stored about now (the planning clock plus the time planning took), and each probe
 * hears of it at its next check-in after that (`nextCheckin`, as follow-up steps).
 */
async function dueWhenStored(db: Db, rows: CanaryInsert[], timing: RoundTiming): Promise<CanaryInsert[]> {
  if (rows.length === 0) return rows;
  const stored = storedAt(timing);
  const checkins = await senderCheckins(db, [...new Set(rows.map((r) => r.senderAccountId))]);
  return dueWhenHeard(rows, (id) => nextCheckin(checkins.get(id), stored, stored, timing.horizonMs));
}

/** The plan's skipped term sets, one entry per term set and reason, with the conversations. */
export function skippedTermSets(skipped: RoundPlan['skipped']): SkippedTermSet[] {
  const out = new Map<string, SkippedTermSet>();
  for (const s of skipped) {
    if (!s.termSet) continue;
    const k = `${termSetKey(s.termSet)}\u0000${s.reason}`;
    const entry = out.get(k) ?? { termSet: [...s.termSet], reason: s.reason, conversations: [] };
    if (!entry.conversations.includes(s.conversation)) entry.conversations.push(s.conversation);
    out.set(k, entry);
  }
  return [...out.values()];
}

/** Every scope (platform, kind, sender region, recipient region) an active sender reaches. */
export function conversationScopes(conversations: readonly SelectedConversation[]): FindingScope[] {
  const out = new Map<string, FindingScope>();
  for (const conv of conversations) {
    for (const s of conv.members.filter((m) => m.active)) {
      for (const r of conv.members) {
        if (r.handle === s.handle) continue;
        const scope: FindingScope = {
          platform: conv.platform,
          conversation_kind: conv.kind,
          sender_region: s.region,
          recipient_region: r.region,
        };
        out.set(scopeKey(scope), scope);
      }
    }
  }
  return [...out.values()];
}

/**
 * Share of the pairs a scope has seen that may be in flight (planned and not judged) at once
 * (docs/decisions/036).
 */
export const IN_FLIGHT_SHARE = 0.25;

/**
 * How many more pairs to plan for an open term set × scope that has seen `seen` pairs at its last
 * look and has `inFlight` pairs planned and not judged (the round's own among them). In flight at
 * once: what the first look still needs (it comes at `minPairs`), or a quarter of what the scope
 * has seen, whichever is more; never past the sequential design's last look (`maxPairs`).
 */
export function extraPairs(
  seen: number,
  inFlight: number,
  design: Pick<SequentialDesign, 'minPairs' | 'maxPairs'> = DEFAULT_SEQUENTIAL_DESIGN,
): number {
  const window = Math.max(design.minPairs - seen, Math.floor(seen * IN_FLIGHT_SHARE));
  return Math.max(0, Math.min(window - inFlight, design.maxPairs - seen - inFlight));
}

/** Takes a planned part's canaries off their sender accounts' budgets. */
function spend(
  budget: Map<string, number>,
  part: RoundPlan,
  accountOf: (handle: string) => string | undefined,
) {
  for (const c of part.canaries) {
    const id = accountOf(c.sender.handle) ?? '';
    budget.set(id, (budget.get(id) ?? 0) - 1);
  }
}

/**
 * The scopes a pair sent from `region` in `conv` reaches: one per recipient region (a member of
 * another region, or a second member of the sender's own).
 */
function scopesReached(conv: SelectedConversation, region: string): FindingScope[] {
  const own = conv.members.filter((m) => m.region === region).length;
  const regions = new Set(conv.members.filter((m) => m.region !== region || own >= 2).map((m) => m.region));
  return [...regions].sort().map((r) => ({
    platform: conv.platform,
    conversation_kind: conv.kind,
    sender_region: region,
    recipient_region: r,
  }));
}

/**
 * A round's second pass (docs/decisions/036): the senders' budget left after one pair per open
 * term set, conversation and sender region goes, a pair at a time and in the round's order
 * (`termSets`), to the open scopes that `extraPairs` says need more in flight. Pairs in flight
 * are counted per scope (term set × platform, kind, sender and recipient region), over every
 * conversation that reaches it. A scope that needs 80 pairs then gets several in one round
 * instead of one per round, and a new one the pairs its first look needs.
 */
async function topUp(
  db: Db,
  o: {
    campaignId: string;
    roundAt: Date;
    /** How long after its deadline a pair is judged at the latest (counted in flight till then). */
    judgedAfterMs: number;
    /** The sweep's sequential design: its first and last looks bound the pairs in flight. */
    design: Pick<SequentialDesign, 'minPairs' | 'maxPairs'>;
    termSets: readonly string[][];
    needs: ReadonlyMap<string[], Map<string, string[]>>;
    conversations: readonly SelectedConversation[];
    /** The scopes each conversation's senders reach (`scopesReachedBy(conversations)`). */
    reached: ScopesReached;
    pairs: ReadonlyMap<string, number>;
    settled: ReadonlySet<string>;
    planned: readonly RoundPlan[];
    budget: Map<string, number>;
    plan: (i: number, ref: string, region: string, k: number, eligible: string[]) => RoundPlan;
    tick: () => Promise<void>;
  },
): Promise<RoundPlan[]> {
  if ([...o.budget.values()].every((n) => n < 2)) return [];
  const byId = new Map(o.conversations.map((c) => [c.id, c]));
  const byRef = new Map(o.conversations.map((c) => [c.ref, c]));
  /** Pairs in flight per findingKey. */
  const flight = new Map<string, number>();
  const add = (termSet: readonly string[], conv: SelectedConversation, region: string, n: number) => {
    const t = termSetKey(termSet);
    for (const scope of o.reached.get(conv)?.get(region) ?? scopesReached(conv, region).map(scopeKey)) {
      const key = findingKey(t, scope);
      flight.set(key, (flight.get(key) ?? 0) + n);
    }
  };
  for (const f of await pairsInFlight(db, o.campaignId, new Date(o.roundAt.getTime() - o.judgedAfterMs))) {
    const conv = byId.get(f.conversationId);
    if (conv) add(f.termSet, conv, f.region, f.pairs);
  }
  const count = (part: RoundPlan) => {
    for (const c of part.canaries) {
      const conv = byRef.get(c.conversation.ref);
      if (c.kind === 'test' && conv) add(c.testTerms, conv, c.sender.region, 1);
    }
  };
  for (const part of o.planned) count(part);
  const out: RoundPlan[] = [];
  for (const [i, t] of o.termSets.entries()) {
    const tKey = termSetKey(t);
    for (const [ref, handles] of o.needs.get(t) ?? []) {
      const conv = byRef.get(ref);
      if (!conv) continue;
      const member = new Map(conv.members.map((m) => [m.handle, m]));
      for (const region of [...new Set(handles.map((h) => member.get(h)?.region ?? ''))].sort()) {
        await o.tick();
        const open = (o.reached.get(conv)?.get(region) ?? [])
          .map((scope) => findingKey(tKey, scope))
          .filter((key) => !o.settled.has(key));
        const wanted = () =>
          Math.max(
            0,
            ...open.map((key) => extraPairs(o.pairs.get(key) ?? 0, flight.get(key) ?? 0, o.design)),
          );
        const senders = handles.filter((h) => member.get(h)?.region === region);
        for (let k = 0; wanted() > 0; k++) {
          const eligible = senders.filter((h) => (o.budget.get(member.get(h)?.accountId ?? '') ?? 0) >= 2);
          if (eligible.length === 0) break;
          const part = o.plan(i, ref, region, k, eligible);
          if (part.canaries.length === 0) break;
          spend(o.budget, part, (handle) => member.get(handle)?.accountId);
          count(part);
          out.push(part);
        }
      }
    }
  }
  return out;
}

/**
 * In a `screen` campaign the listed term sets are packed into messages by one screen per scope
 * (collector/followups.ts), not sent one per message: every listed set × scope whose screen is
 * not over yet is held back (returned as if settled). Once the screen is done, the sets it
 * cleared have settled `none` findings and the rest (suppressed, cross-set, unresolved) are
 * tested by the rounds like any term set; a failed screen leaves all of them to the rounds.
 * With fewer than two listed sets there is no screen and nothing is held back.
 */
export async function screenedKeys(
  db: Db,
  campaignId: string,
  listed: readonly string[][],
  conversations: readonly SelectedConversation[],
): Promise<Set<string>> {
  const held = new Set<string>();
  if (listed.length < 2) return held;
  const over = await finishedScreens(db, campaignId);
  const keys = listed.map(termSetKey);
  for (const scope of conversationScopes(conversations)) {
    if (over.has(screenKey(scope))) continue;
    const s = scopeKey(scope);
    for (const t of keys) held.add(findingKey(t, s));
  }
  return held;
}

/**
 * Per conversation (ref), the active handles that should still send `termSet`: those of a
 * sender region with a scope (kind, sender region, recipient region) in that conversation
 * that has no settled finding.
 */
export function openSenders(
  termSet: readonly string[],
  conversations: readonly SelectedConversation[],
  active: readonly string[],
  settled: ReadonlySet<string>,
  reached: ScopesReached = scopesReachedBy(conversations),
): Map<string, string[]> {
  const isActive = new Set(active);
  const t = termSetKey(termSet);
  const out = new Map<string, string[]>();
  for (const c of conversations) {
    if (c.members.length < 2) continue;
    const handles: string[] = [];
    for (const sender of c.members) {
      if (!isActive.has(sender.handle)) continue;
      const scopes = reached.get(c)?.get(sender.region) ?? [];
      if (scopes.some((scope) => !settled.has(findingKey(t, scope)))) handles.push(sender.handle);
    }
    if (handles.length > 0) out.set(c.ref, handles);
  }
  return out;
}

/** Per conversation and sender region, the keys of the scopes a pair sent from there reaches. */
export type ScopesReached = ReadonlyMap<SelectedConversation, ReadonlyMap<string, ScopeKey[]>>;

/**
 * `scopesReached` for every conversation and region among its members, as scope keys: built once
 * per round rather than once per term set (a round of 500 sets asked it 500 times).
 */
export function scopesReachedBy(conversations: readonly SelectedConversation[]): ScopesReached {
  return new Map(
    conversations.map((c) => [
      c,
      new Map(
        [...new Set(c.members.map((m) => m.region))].map((region) => [
          region,
          scopesReached(c, region).map(scopeKey),
        ]),
      ),
    ]),
  );
}

/**
 * Per active sender account of the conversations, how many canaries it can still take in this
 * round: its sends between the round's start and its last deadline (its probe's pacing, limits
 * and budget; collector/capacity.ts) less the canaries already planned for it there and not sent.
 */
export async function roundBudget(
  db: Db,
  conversations: readonly SelectedConversation[],
  roundAt: Date,
  spread: number,
  deadlineSeconds: number,
): Promise<Map<string, number>> {
  const ids = [
    ...new Set(conversations.flatMap((c) => c.members.filter((m) => m.active).map((m) => m.accountId))),
  ];
  const from = roundAt.getTime();
  const until = from + (spread + deadlineSeconds) * 1000;
  const loads = await senderLoads(db, ids, roundAt, new Date(until));
  return new Map(
    ids.map((id) => [id, budgetLeft(loads.get(id) ?? { sentSinceReport: 0, outstanding: 0 }, from, until)]),
  );
}

/**
 * The open term sets in the order a round spends its budget on them: sets a screen or isolation
 * derived (suspected findings) first, then those closest to a decision (the most pairs already
 * seen in one of their open scopes), the rest in the round's seeded random order.
 */
export function prioritised(
  open: readonly string[][],
  o: {
    rng: ReturnType<typeof createRng>;
    scopes: readonly FindingScope[];
    settled: ReadonlySet<string>;
    pairs: ReadonlyMap<string, number>;
    derived: ReadonlySet<string>;
  },
): string[][] {
  const order = shuffled(o.rng, open);
  const score = (t: readonly string[]) => {
    let most = 0;
    for (const scope of o.scopes) {
      const key = findingKey(t, scope);
      if (!o.settled.has(key)) most = Math.max(most, o.pairs.get(key) ?? 0);
    }
    return (o.derived.has(termSetKey(t)) ? 1_000_000 : 0) + most;
  };
  const scored = order.map((t, i) => ({ t, i, s: score(t) }));
  scored.sort((a, b) => b.s - a.s || a.i - b.i);
  return scored.map((x) => x.t);
}
