/**
 * Storage for findings (collector/findings.ts decides them): the paired outcome rows a
 * finding is built from, the sequential-design state per term set × scope, the upsert of
 * findings, and the per-campaign advisory lock that lets several collectors recompute
 * without doing the same work twice.
 */
import { sql } from 'drizzle-orm';
import type { CampaignMode } from '../../protocol/index.ts';
import type { Corroboration } from '../analysis/corroboration.ts';
import type { SequentialState } from '../analysis/index.ts';
import { type Queryable, rows } from './open.ts';
import { sameDeadline } from './partitions.ts';

export interface FindingScope {
  platform: string;
  conversation_kind: 'direct' | 'group';
  sender_region: string;
  recipient_region: string;
}

/**
 * One recipient of one test/control pair, both final: the test's outcome and its paired
 * control's outcome for the same recipient (same sender, conversation, template, window).
 */
export interface PairedOutcome {
  termSet: string[];
  platform: string;
  kind: 'direct' | 'group';
  senderRegion: string;
  recipientRegion: string;
  testStatus: string;
  testLatencyMs: number | null;
  controlStatus: string;
  controlLatencyMs: number | null;
  /** Start of the pair's window (its round, or its send time for follow-ups), epoch ms. */
  windowMs: number;
  sendMs: number;
  /** Probes (and their ASNs) holding the sender and the recipient: corroboration, decision 012. */
  senderProbeId: string;
  senderAsn: number;
  recipientProbeId: string;
  recipientAsn: number;
}

/**
 * One unit of evidence per message and recipient region: of a group message's recipients in one
 * region (the scope), one whose test and control outcomes are both final stands for all. Their
 * outcomes are not independent trials (the censor decides per message and registration region;
 * a lost send loses the message for every recipient), and counting each would let a group with
 * three accounts of a region settle on a third of the messages, with p-values that overstate the
 * evidence (decision 031). Which recipient: the one whose hash with the pair comes first, so the
 * choice rotates over the region's accounts from message to message, and is the same at every
 * read of the same outcomes (judging incrementally equals judging from scratch). Direct chats
 * and groups with one account per region are unchanged. `t` is the test canary, `ra` the
 * recipient's account and `ot` the test's outcome.
 */
export const ONE_RECIPIENT_PER_REGION = {
  distinct: sql`distinct on (t.pair_id, ra.region)`,
  order: sql`order by t.pair_id, ra.region, md5(t.pair_id::text || ot.recipient_account_id::text)`,
};

/**
 * Paired outcomes of a campaign (one per message and recipient region, as above) whose deadline passed at least `graceMs` before `now` (a
 * receipt shortly after the deadline turns `missing` into `delayed`; judging earlier would
 * call a delay a drop). Follow-up messages are left out: screening packs are not term sets,
 * and an isolation run's few probes of a subset are its own evidence (followup_steps), not a
 * finding that would never get enough pairs to settle and would only weigh on the BH family.
 */
export async function pairedOutcomes(
  q: Queryable,
  campaignId: string,
  now: Date,
  graceMs: number,
): Promise<PairedOutcome[]> {
  const before = new Date(now.getTime() - graceMs).toISOString();
  return rows<PairedOutcome>(
    q,
    sql`select * from (select ${ONE_RECIPIENT_PER_REGION.distinct} t.term_set as "termSet", cv.platform, cv.kind, sa.region as "senderRegion",
          ra.region as "recipientRegion", ot.status as "testStatus", ot.latency_ms as "testLatencyMs",
          oc.status as "controlStatus", oc.latency_ms as "controlLatencyMs",
          (extract(epoch from coalesce(r.round_at, t.send_at)) * 1000)::float8 as "windowMs",
          (extract(epoch from t.send_at) * 1000)::float8 as "sendMs",
          sa.probe_id as "senderProbeId", sp.asn::float8 as "senderAsn",
          ra.probe_id as "recipientProbeId", rp.asn::float8 as "recipientAsn"
        from canaries t
        join canaries c on c.pair_id = t.pair_id and c.kind = 'control'
        join outcomes ot on ot.canary_id = t.id and ${sameDeadline('ot', 't')}
        join outcomes oc on oc.canary_id = c.id and ${sameDeadline('oc', 'c')}
          and oc.recipient_account_id = ot.recipient_account_id
        join conversations cv on cv.id = t.conversation_id
        join accounts sa on sa.id = t.sender_account_id
        join accounts ra on ra.id = ot.recipient_account_id
        join probes sp on sp.id = sa.probe_id
        join probes rp on rp.id = ra.probe_id
        left join rounds r on r.id = t.round_id
        where t.campaign_id = ${campaignId}::uuid and t.kind = 'test'
          and t.deadline_at < ${before}::timestamptz and c.deadline_at < ${before}::timestamptz
          and ot.status not in ('pending', 'failed') and oc.status not in ('pending', 'failed')
          and not exists (select 1 from followup_steps s where s.pair_ids @> array[t.pair_id])
        ${ONE_RECIPIENT_PER_REGION.order}) e
        order by "windowMs"`,
  );
}

/**
 * Takes the campaign's findings lock for this transaction; false when another collector
 * holds it (that one is recomputing the same campaign right now: skip, do not wait).
 */
export async function tryLockCampaign(q: Queryable, campaignId: string, purpose: string): Promise<boolean> {
  const [row] = await rows<{ locked: boolean }>(
    q,
    sql`select pg_try_advisory_xact_lock(hashtextextended(${`${purpose}:${campaignId}`}, 0)) as locked`,
  );
  return row?.locked === true;
}

export interface StoredSequentialState {
  key: string;
  termSet: string[];
  scope: FindingScope;
  state: SequentialState;
  settledVerdict: string | null;
}

/** Keys of the campaign's settled `none` findings that a screen cleared (findings.ts writeScreenClearances). */
export async function screenClearedKeys(q: Queryable, campaignId: string): Promise<Set<string>> {
  const found = await rows<{ key: string }>(
    q,
    sql`select key from findings where campaign_id = ${campaignId}::uuid and settled and key is not null
          and verdict = 'none' and detail->>'source' = 'screen'`,
  );
  return new Set(found.map((r) => r.key));
}

export async function sequentialStates(q: Queryable, campaignId: string): Promise<StoredSequentialState[]> {
  return rows<StoredSequentialState>(
    q,
    sql`select key, term_set as "termSet", scope, state, settled_verdict as "settledVerdict"
        from sequential_states where campaign_id = ${campaignId}::uuid`,
  );
}

export async function saveSequentialStates(
  q: Queryable,
  campaignId: string,
  list: StoredSequentialState[],
): Promise<void> {
  if (list.length === 0) return;
  const col = (f: (s: StoredSequentialState) => unknown) => sql.param(list.map(f));
  await q.execute(sql`
    insert into sequential_states (campaign_id, key, term_set, scope, state, settled_verdict, updated_at)
    select ${campaignId}::uuid, s.key, array(select jsonb_array_elements_text(s.term_set::jsonb)),
      s.scope::jsonb, s.state::jsonb, s.settled, now()
    from unnest(${col((s) => s.key)}::text[], ${col((s) => JSON.stringify(s.termSet))}::text[],
      ${col((s) => JSON.stringify(s.scope))}::text[], ${col((s) => JSON.stringify(s.state))}::text[],
      ${col((s) => s.settledVerdict)}::text[]) as s(key, term_set, scope, state, settled)
    on conflict (campaign_id, key) do update set
      state = excluded.state, settled_verdict = excluded.settled_verdict, updated_at = now()`);
}

export interface FindingWrite {
  key: string;
  termSet: string[];
  scope: FindingScope;
  windowStart: Date;
  windowEnd: Date;
  verdict: string;
  kind: string;
  testTrials: number;
  controlTrials: number;
  testRate: number;
  controlRate: number;
  pValue: number;
  qValue: number;
  ciLow: number;
  ciHigh: number;
  diffCiLow: number;
  diffCiHigh: number;
  settled: boolean;
  minimal: boolean;
  since: Date | null;
  endedAt: Date | null;
  detail: unknown;
  /** { test, control }: { probes, asns, independent } (decision 012); null when not from paired outcomes. */
  independentProbes?: unknown;
}

/** Idempotent upsert by (campaign, key); only rows whose content changed get a new updated_at. */
export async function upsertFindings(q: Queryable, campaignId: string, list: FindingWrite[]): Promise<void> {
  if (list.length === 0) return;
  const col = (f: (w: FindingWrite) => unknown) => sql.param(list.map(f));
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  const num = (x: number) => (Number.isFinite(x) ? x : null);
  await q.execute(sql`
    insert into findings (campaign_id, key, term_set, scope, window_start, window_end, verdict, kind,
      test_trials, control_trials, test_rate, control_rate, p_value, q_value, ci_low, ci_high,
      diff_ci_low, diff_ci_high, settled, minimal, since, ended_at, detail, independent_probes, updated_at)
    select ${campaignId}::uuid, w.key, array(select jsonb_array_elements_text(w.term_set::jsonb)), w.scope::jsonb,
      w.window_start, w.window_end, w.verdict, w.kind, w.nt, w.nc, w.rt, w.rc, w.p, w.q, w.cl, w.ch, w.dl, w.dh,
      w.settled, w.minimal, w.since, w.ended_at, w.detail::jsonb, w.independent::jsonb, now()
    from unnest(${col((w) => w.key)}::text[], ${col((w) => JSON.stringify(w.termSet))}::text[],
      ${col((w) => JSON.stringify(w.scope))}::text[], ${col((w) => iso(w.windowStart))}::timestamptz[],
      ${col((w) => iso(w.windowEnd))}::timestamptz[], ${col((w) => w.verdict)}::text[], ${col((w) => w.kind)}::text[],
      ${col((w) => w.testTrials)}::int[], ${col((w) => w.controlTrials)}::int[],
      ${col((w) => num(w.testRate))}::float8[], ${col((w) => num(w.controlRate))}::float8[],
      ${col((w) => num(w.pValue))}::float8[], ${col((w) => num(w.qValue))}::float8[],
      ${col((w) => num(w.ciLow))}::float8[], ${col((w) => num(w.ciHigh))}::float8[],
      ${col((w) => num(w.diffCiLow))}::float8[], ${col((w) => num(w.diffCiHigh))}::float8[],
      ${col((w) => w.settled)}::boolean[], ${col((w) => w.minimal)}::boolean[],
      ${col((w) => iso(w.since))}::timestamptz[], ${col((w) => iso(w.endedAt))}::timestamptz[],
      ${col((w) => JSON.stringify(w.detail ?? null))}::text[],
      ${col((w) => (w.independentProbes === undefined ? null : JSON.stringify(w.independentProbes)))}::text[])
      as w(key, term_set, scope, window_start, window_end, verdict, kind, nt, nc, rt, rc, p, q, cl, ch, dl, dh,
           settled, minimal, since, ended_at, detail, independent)
    on conflict (campaign_id, key) do update set
      window_start = excluded.window_start, window_end = excluded.window_end, verdict = excluded.verdict,
      kind = excluded.kind, test_trials = excluded.test_trials, control_trials = excluded.control_trials,
      test_rate = excluded.test_rate, control_rate = excluded.control_rate, p_value = excluded.p_value,
      q_value = excluded.q_value, ci_low = excluded.ci_low, ci_high = excluded.ci_high,
      diff_ci_low = excluded.diff_ci_low, diff_ci_high = excluded.diff_ci_high, settled = excluded.settled,
      minimal = excluded.minimal, since = excluded.since, ended_at = excluded.ended_at, detail = excluded.detail,
      independent_probes = excluded.independent_probes,
      updated_at = case when (findings.verdict, findings.test_trials, findings.control_trials, findings.settled,
                                findings.minimal, findings.q_value)
                              is distinct from (excluded.verdict, excluded.test_trials, excluded.control_trials,
                                excluded.settled, excluded.minimal, excluded.q_value)
                         then now() else findings.updated_at end`);
}

export interface StoredFinding {
  id: string;
  key: string;
  termSet: string[];
  scope: FindingScope;
  verdict: string;
  kind: string | null;
  testTrials: number;
  controlTrials: number;
  testRate: number | null;
  controlRate: number | null;
  pValue: number | null;
  qValue: number | null;
  ciLow: number | null;
  ciHigh: number | null;
  settled: boolean;
  minimal: boolean;
  /** Date (pg) or ISO string, as the driver returns timestamptz. */
  since: Date | string | null;
  endedAt: Date | string | null;
  windowStart: Date | string;
  windowEnd: Date | string;
  /** Segments, latency, sequential look, or `source: 'screen'` for a screen's clearance. */
  detail: unknown;
  independentProbes: { test: Corroboration; control: Corroboration } | null;
}

export async function findingsOfCampaign(q: Queryable, campaignId: string): Promise<StoredFinding[]> {
  return rows<StoredFinding>(
    q,
    sql`select id, key, term_set as "termSet", scope, verdict, kind, test_trials as "testTrials",
          control_trials as "controlTrials", test_rate as "testRate", control_rate as "controlRate",
          p_value as "pValue", q_value as "qValue", ci_low as "ciLow", ci_high as "ciHigh", settled, minimal,
          since, ended_at as "endedAt", window_start as "windowStart", window_end as "windowEnd", detail,
          independent_probes as "independentProbes"
        from findings where campaign_id = ${campaignId}::uuid order by key`,
  );
}

/** Campaigns with outcomes to judge: active, or ended less than `recentMs` ago. */
export async function campaignsToJudge(
  q: Queryable,
  now: Date,
  recentMs: number,
): Promise<
  {
    id: string;
    mode: CampaignMode;
    deadlineSeconds: number;
    minIndependentProbes: number;
  }[]
> {
  const since = new Date(now.getTime() - recentMs).toISOString();
  return rows(
    q,
    sql`select id, mode, deadline_seconds as "deadlineSeconds", min_independent_probes as "minIndependentProbes"
        from campaigns
        where active and starts_at <= ${now.toISOString()}::timestamptz
          and (ends_at is null or ends_at > ${since}::timestamptz)
        order by created_at`,
  );
}

/** Keys (findings.key) of the campaign's settled term set × scope pairs. */
export async function settledKeys(q: Queryable, campaignId: string): Promise<Set<string>> {
  const found = await rows<{ key: string }>(
    q,
    sql`select key from findings where campaign_id = ${campaignId}::uuid and settled and key is not null`,
  );
  return new Set(found.map((r) => r.key));
}

/** The campaign's settled, minimal findings with more than one term: what isolation may start from. */
export async function isolationCandidates(
  q: Queryable,
  campaignId: string,
): Promise<{ termSet: string[]; scope: FindingScope; verdict: string }[]> {
  return rows(
    q,
    sql`select term_set as "termSet", scope, verdict from findings
        where campaign_id = ${campaignId}::uuid and settled and minimal and cardinality(term_set) > 1`,
  );
}

/** Verdict and settledness of the campaign's findings, by key (findingKey, collector/keys.ts). */
export async function findingStates(
  q: Queryable,
  campaignId: string,
): Promise<Map<string, { verdict: string; settled: boolean }>> {
  const found = await rows<{ key: string; verdict: string; settled: boolean }>(
    q,
    sql`select key, verdict, settled from findings where campaign_id = ${campaignId}::uuid and key is not null`,
  );
  return new Map(found.map((k) => [k.key, k]));
}

/** Keys (`screenKey`, collector/keys.ts) of the campaign's screens that are over (done or failed). */
export async function finishedScreens(q: Queryable, campaignId: string): Promise<Set<string>> {
  const found = await rows<{ key: string }>(
    q,
    sql`select key from followups where campaign_id = ${campaignId}::uuid and procedure = 'screen'
          and status in ('done', 'failed')`,
  );
  return new Set(found.map((r) => r.key));
}

/** Term sets found by isolation that the campaign tests beside its lists. */
export async function derivedTermSets(q: Queryable, campaignId: string): Promise<string[][]> {
  const found = await rows<{ termSet: string[] }>(
    q,
    sql`select term_set as "termSet" from derived_term_sets where campaign_id = ${campaignId}::uuid
        order by created_at, key`,
  );
  return found.map((r) => r.termSet);
}
