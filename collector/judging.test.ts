/**
 * Incremental judging (decision 028) against the recomputation it replaced: on seeded random
 * campaigns whose outcomes arrive in batches between sweeps (late outcomes, pending outcomes
 * finalised later, receipts that turn `missing` into `delayed`, deadlines passing between sweeps,
 * one term set spelled two ways), the stored findings after each incremental sweep equal what the
 * former code (every pair read on every sweep; kept below as the reference) stores at the same
 * sweeps. And: a sweep with nothing new reads no pairs; a change in one scope re-judges that scope.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { expect, it } from 'vitest';
import type { CampaignMode } from '../protocol/index.ts';
import { corroboration } from './analysis/corroboration.ts';
import {
  DEFAULT_SEQUENTIAL_DESIGN,
  detectChanges,
  type Finding,
  INITIAL_SEQUENTIAL_STATE,
  judgeAll,
  pairedEvidence,
  type SequentialState,
  sequentialLook,
} from './analysis/index.ts';
import { seededRandom } from './analysis/prng.ts';
import { createCampaign, createTermList } from './db/campaigns.ts';
import { type CanaryInsert, insertCanaries } from './db/canaries.ts';
import { type FindingWrite, findingsOfCampaign, pairedOutcomes, type StoredFinding } from './db/findings.ts';
import { type Db, rows } from './db/open.ts';
import {
  groupPairs,
  holdUncorroborated,
  isFindingVerdict,
  markMinimal,
  recomputeCampaignFindings,
  reviseSettled,
} from './findings.ts';
import { describeEachDb } from './test-support/db.ts';

type Region = 'US' | 'CN' | 'AU';
type Status = 'delivered' | 'missing' | 'delayed' | 'pending';
interface Campaign {
  id: string;
  mode: CampaignMode;
  deadlineSeconds: number;
}

/** The former recomputation (every pair of the campaign, every sweep), sequential states in memory. */
async function reference(
  db: Db,
  campaign: Campaign,
  now: Date,
  states: Map<string, SequentialState>,
  out: Map<string, FindingWrite>,
): Promise<void> {
  const design = DEFAULT_SEQUENTIAL_DESIGN;
  const groups = await groupPairs(
    await pairedOutcomes(db, campaign.id, now, campaign.deadlineSeconds * 1000),
  );
  const built = await Promise.all(groups.map(async (g) => ({ ...g, ...(await pairedEvidence(g.rows)) })));
  const current = judgeAll(
    built.map((b) => b.evidence),
    design.judge,
  );
  const writes: Omit<FindingWrite, 'minimal'>[] = [];
  for (const [i, b] of built.entries()) {
    const f = current[i] as Finding;
    let state = states.get(b.key);
    if (campaign.mode !== 'monitor') {
      const before = state ?? INITIAL_SEQUENTIAL_STATE;
      const s = reviseSettled(before, f.verdict);
      const pairs = Math.min(f.n_test, f.n_control);
      const next = !s.settled && pairs - s.lastPairs >= 4 ? sequentialLook(s, b.evidence, design).state : s;
      if (next !== before) {
        state = next;
        states.set(b.key, next);
      }
    }
    const settledVerdict = campaign.mode === 'monitor' ? undefined : state?.settled?.verdict;
    let d = { verdict: f.verdict as string, settled: false, finding: f };
    if (settledVerdict !== undefined) {
      if (isFindingVerdict(settledVerdict)) {
        if (f.verdict === settledVerdict && f.q <= design.judge.alpha)
          d = { ...d, verdict: settledVerdict, settled: true };
      } else d = { ...d, verdict: settledVerdict, settled: true };
    }
    const support = { test: corroboration(b.counted), control: corroboration(b.counted) };
    d = holdUncorroborated(d as never, support, 1);
    const changes = detectChanges(b.windows, { judge: design.judge });
    const lastAdverse = [...changes.segments].reverse().find((s) => isFindingVerdict(s.verdict));
    const currentVerdict = changes.current?.verdict;
    const sendTimes = b.rows.map((r) => r.sendMs);
    writes.push({
      key: b.key,
      termSet: b.termSet,
      scope: b.scope,
      windowStart: new Date(Math.min(...sendTimes)),
      windowEnd: new Date(Math.max(...sendTimes)),
      verdict: d.verdict,
      kind: d.finding.kind,
      testTrials: d.finding.n_test,
      controlTrials: d.finding.n_control,
      testRate: d.finding.rate_test,
      controlRate: d.finding.rate_control,
      pValue: d.finding.p,
      qValue: d.finding.q,
      ciLow: d.finding.ci[0],
      ciHigh: d.finding.ci[1],
      diffCiLow: d.finding.ci_diff[0],
      diffCiHigh: d.finding.ci_diff[1],
      settled: d.settled,
      since: changes.current ? new Date(changes.current.since) : null,
      endedAt:
        lastAdverse && currentVerdict !== undefined && !isFindingVerdict(currentVerdict)
          ? new Date(lastAdverse.to)
          : null,
      detail: {
        segments: changes.segments.map((s) => ({
          from: new Date(s.from).toISOString(),
          to: new Date(s.to).toISOString(),
          verdict: s.verdict,
        })),
        outage_windows: changes.outages.length,
        ...(d.finding.latency ? { latency: d.finding.latency } : {}),
        ...(state?.settled
          ? { sequential: { verdict: state.settled.verdict, pairs: state.settled.atPairs } }
          : {}),
      },
      independentProbes: support,
    });
  }
  for (const w of markMinimal(writes)) out.set(w.key, w);
}

const num = (x: number | null) => (x === null || !Number.isFinite(x) ? null : x);
const ms = (d: Date | string | null) => (d === null ? null : new Date(d).getTime());
const json = (x: unknown) => JSON.parse(JSON.stringify(x ?? null));

function comparable(f: FindingWrite | StoredFinding) {
  return {
    key: f.key,
    verdict: f.verdict,
    kind: f.kind,
    testTrials: f.testTrials,
    controlTrials: f.controlTrials,
    testRate: num(f.testRate),
    controlRate: num(f.controlRate),
    pValue: num(f.pValue),
    qValue: num(f.qValue),
    ciLow: num(f.ciLow),
    ciHigh: num(f.ciHigh),
    settled: f.settled,
    minimal: f.minimal,
    since: ms(f.since),
    endedAt: ms(f.endedAt),
    windowStart: ms(f.windowStart),
    windowEnd: ms(f.windowEnd),
    detail: json(f.detail),
    independentProbes: json(f.independentProbes),
  };
}

/**
 * Waits until the database clock has passed the latest outcome write. A sweep marks only the
 * writes strictly before its bound (now(), collector/db/judging.ts): one in the same instant
 * waits for the next sweep, by design. PGlite's now() has millisecond resolution, so a write
 * and the sweep right after it can share the instant; a test that expects the very next sweep
 * to judge the write waits for the clock first.
 */
async function clockPastWrites(db: Db): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const [r] = await rows<{ past: boolean }>(
      db,
      sql`select coalesce((select max(updated_at) from outcomes) < now(), true) as past`,
    );
    if (r?.past) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error('the database clock did not pass the latest outcome write');
}

const byKey = <T extends { key: string }>(list: T[]) => [...list].sort((a, b) => a.key.localeCompare(b.key));

/**
 * A campaign in Postgres: a US sender, two CN recipients and an AU one in a group (a group
 * message is one trial per recipient region, collector/db/findings.ts), a direct chat US–CN;
 * `round()` stores one round's pairs (outcomes now, later or pending), `update()` changes outcomes.
 */
async function world(db: Db, mode: CampaignMode, termSets: string[][]) {
  const tag = randomBytes(4).toString('hex');
  const [probe] = await rows<{ id: string }>(
    db,
    sql`insert into probes (public_key, country, asn, software_version)
      values (${`k-${tag}`}, 'US', 64500, 'test') returning id`,
  );
  const acc = {} as Record<Region, string>;
  for (const region of ['US', 'CN', 'AU'] as const) {
    const [row] = await rows<{ id: string }>(
      db,
      sql`insert into accounts (probe_id, platform, handle, region, adapter_name, adapter_version, state)
        values (${probe?.id}::uuid, 'testbed', ${`${region.toLowerCase()}-${tag}`}, ${region}, 'testbed', '1', 'active')
        returning id`,
    );
    acc[region] = row?.id ?? '';
  }
  const [cn2] = await rows<{ id: string }>(
    db,
    sql`insert into accounts (probe_id, platform, handle, region, adapter_name, adapter_version, state)
      values (${probe?.id}::uuid, 'testbed', ${`cn2-${tag}`}, 'CN', 'testbed', '1', 'active') returning id`,
  );
  const conv = async (kind: 'direct' | 'group', regions: Region[]) => {
    const [row] = await rows<{ id: string }>(
      db,
      sql`insert into conversations (platform, ref, kind) values ('testbed', ${`${kind}-${tag}`}, ${kind}) returning id`,
    );
    const recipients = regions.map((region) => ({ region, id: acc[region] }));
    if (kind === 'group') recipients.push({ region: 'CN', id: cn2?.id ?? '' });
    return { id: row?.id ?? '', kind, recipients };
  };
  const convs = [await conv('group', ['CN', 'AU']), await conv('direct', ['CN'])];
  const list = await createTermList(db, { name: `list-${tag}`, termSets });
  const created = await createCampaign(db, {
    name: `judging-${tag}`,
    mode,
    termListIds: list ? [list.id] : [],
    conversations: { platform: 'testbed' },
    cadenceCron: '* * * * *',
    deadlineSeconds: 10,
    termSetsPerRound: 10,
    seed: tag,
    startsAt: new Date(Date.now() - 3600_000),
    endsAt: null,
  });
  const campaign: Campaign = { id: created.id, mode, deadlineSeconds: 10 };
  /** Outcome rows written so far: canary, recipient, status. */
  const written: { canary: string; recipient: string; status: Status; kind: 'test' | 'control' }[] = [];

  async function writeOutcomes(list: { canary: string; recipient: string; status: Status; at: Date }[]) {
    if (list.length === 0) return;
    const p = <T>(f: (x: (typeof list)[number]) => T) => sql.param(list.map(f));
    // deadline_at is the canary's, as the collector writes it (the partition key, decision 040)
    await db.execute(sql`insert into outcomes (canary_id, recipient_account_id, status, deadline_at, latency_ms,
        data_format_version)
      select x.c, x.r, x.s, c.deadline_at, x.l, 1
      from unnest(${p((x) => x.canary)}::uuid[], ${p((x) => x.recipient)}::uuid[], ${p((x) => x.status)}::text[],
        ${p((x) => (x.status === 'delivered' ? 200 : x.status === 'delayed' ? 40_000 : null))}::int[])
        as x(c, r, s, l)
        join canaries c on c.id = x.c
      on conflict (canary_id, recipient_account_id, deadline_at) do update set status = excluded.status,
        latency_ms = excluded.latency_ms, updated_at = now()`);
  }

  /**
   * One round at `at` of the given term sets in the given conversations; `status(terms, kind,
   * recipient, arm)` decides each outcome; returns the outcomes held back (to write later).
   */
  async function round(
    at: Date,
    sets: string[][],
    status: (terms: string[], kind: 'direct' | 'group', r: Region, arm: 'test' | 'control') => Status,
    holdBack: (i: number) => boolean = () => false,
    only?: { kind: 'direct' | 'group'; recipient: Region },
  ) {
    const roundId = randomUUID();
    await db.execute(sql`insert into rounds (id, campaign_id, round_at, seed, rng_algorithm)
      values (${roundId}::uuid, ${campaign.id}::uuid, ${at.toISOString()}::timestamptz, 's', 'x')`);
    const canaries: CanaryInsert[] = [];
    const now: { canary: string; recipient: string; status: Status; at: Date }[] = [];
    const later: typeof now = [];
    for (const terms of sets) {
      for (const c of convs) {
        if (only && only.kind !== c.kind) continue;
        const pairId = randomUUID();
        for (const kind of ['test', 'control'] as const) {
          const id = randomUUID();
          canaries.push({
            id,
            campaignId: campaign.id,
            roundId,
            kind,
            pairId,
            termSet: terms,
            carriedTerms: terms,
            text: `t ${id}`,
            nonce: `sd${randomBytes(6).toString('hex')}`,
            senderAccountId: acc.US,
            conversationId: c.id,
            sendAt: at,
            deadlineAt: new Date(at.getTime() + 10_000),
            templateId: 'bare',
            templateVersion: '1',
            seed: 's',
          });
          for (const { region: r, id: recipient } of c.recipients) {
            if (only && only.recipient !== r) continue;
            const o = { canary: id, recipient, status: status(terms, c.kind, r, kind), at };
            written.push({ ...o, kind });
            (holdBack(now.length + later.length) ? later : now).push(o);
          }
        }
      }
    }
    await insertCanaries(db, canaries);
    await writeOutcomes(now);
    return later;
  }

  return { campaign, acc, round, writeOutcomes, written };
}

describeEachDb('incremental judging', (getDb) => {
  /**
   * A seeded campaign measured in batches: each batch stores a few rounds (some outcomes held
   * back to a later batch, some pending and finalised later, some `missing` turned `delayed`),
   * then both the incremental sweep and the reference run at the same `now`, which trails the
   * newest rounds so that deadlines pass between sweeps.
   */
  async function run(seed: number, mode: CampaignMode, o: { maxKeys?: number; concurrent?: boolean } = {}) {
    const { db } = getDb();
    const random = seededRandom(seed);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)] as T;
    const vocabulary = ['六四', '法轮', '维权', '天气', '图书馆', '自行车'];
    const sets: string[][] = [['六四', '维权']];
    while (sets.length < 4) {
      const t = pick(vocabulary);
      if (!sets.some((s) => s.includes(t))) sets.push([t]);
    }
    // the combination is stored in both spellings (one key)
    const spell = (terms: string[], i: number) =>
      terms.length > 1 && i % 2 === 1 ? [...terms].reverse() : terms;
    const rule = new Map<string, number>();
    for (const s of sets) {
      for (const k of ['group|CN', 'group|AU', 'direct|CN'])
        rule.set(`${[...s].sort().join('+')}|${k}`, pick([0, 0, 0.5, 1]));
    }
    const w = await world(db, mode, sets);
    const status = (terms: string[], kind: string, r: Region, arm: 'test' | 'control'): Status => {
      if (random() < 0.05) return 'pending';
      if (random() < 0.04) return 'missing';
      const rate = arm === 'test' ? (rule.get(`${[...terms].sort().join('+')}|${kind}|${r}`) ?? 0) : 0;
      if (random() < rate) return random() < 0.3 ? 'delayed' : 'missing';
      return 'delivered';
    };
    const states = new Map<string, SequentialState>();
    const expected = new Map<string, FindingWrite>();
    const start = Date.now() - 6 * 3600_000;
    let held: Awaited<ReturnType<typeof w.round>> = [];
    let minute = 0;
    let judged = 0;
    for (let batch = 0; batch < 7; batch++) {
      const rounds = 2 + Math.floor(random() * 4);
      const next: typeof held = [];
      for (let i = 0; i < rounds; i++, minute++) {
        next.push(
          ...(await w.round(
            new Date(start + minute * 60_000),
            // not every set every round: some cells get no outcome in a batch
            sets.filter((_, j) => j === minute % sets.length || random() < 0.6).map((s) => spell(s, minute)),
            status,
            () => random() < 0.1,
          )),
        );
      }
      // late outcomes of the previous batch, then changes of outcomes already judged
      await w.writeOutcomes(held);
      held = next;
      const changes = w.written
        .filter(
          (x) => (x.status === 'pending' || (x.status === 'missing' && x.kind === 'test')) && random() < 0.3,
        )
        .map((x) => {
          x.status = x.status === 'pending' ? pick(['delivered', 'missing'] as const) : 'delayed';
          return { ...x, at: new Date(start) };
        });
      await w.writeOutcomes(changes);
      // the sweep's clock: some of the newest rounds' deadlines (plus grace) not yet passed
      const now = new Date(start + (minute - 1) * 60_000 + pick([0, 15_000, 25_000, 90_000]));
      // A sweep marks the writes before its own start, half-open: a write in the same instant is
      // left to the next sweep (decision 028, "Equal timestamps"). PGlite's clock has millisecond
      // resolution, so without this pause the batch's last write could share the first sweep's
      // instant and wait for a sweep this test does not run (it failed so, now and then).
      await new Promise((resolve) => setTimeout(resolve, 2));
      // then, with nothing written, a later clock: deadlines alone bring pairs in
      for (const at of [now, new Date(now.getTime() + 30_000)]) {
        if (o.concurrent) {
          const both = await Promise.all([
            recomputeCampaignFindings(db, w.campaign, at, { maxKeys: o.maxKeys }),
            recomputeCampaignFindings(db, w.campaign, at, { maxKeys: o.maxKeys }),
          ]);
          judged += both.reduce((a, r) => a + r.keysJudged, 0);
        }
        // until nothing is marked: with maxKeys below the campaign's keys, several sweeps
        for (let i = 0; i < 20; i++) {
          const r = await recomputeCampaignFindings(db, w.campaign, at, { maxKeys: o.maxKeys });
          judged += r.keysJudged;
          if (r.ran && r.backlog === 0) break;
        }
        if (mode !== 'monitor' || batch === 6 || o.maxKeys === undefined) {
          // monitor mode has no sequential state: one recomputation from scratch equals any sequence
          if (mode === 'monitor') expected.clear();
          await reference(db, w.campaign, at, states, expected);
          const got = await findingsOfCampaign(db, w.campaign.id);
          expect(byKey(got).map(comparable), `seed ${seed}, batch ${batch}, at ${at.toISOString()}`).toEqual(
            byKey([...expected.values()]).map(comparable),
          );
        }
      }
    }
    expect(expected.size).toBeGreaterThan(6);
    return { judged, keys: expected.size };
  }

  for (const seed of [1, 2, 3]) {
    it(`isolate mode, seed ${seed}: every sweep stores what a recomputation from all pairs stores`, async () => {
      await run(seed, 'isolate');
    }, 120_000);
  }

  it('monitor mode, 3 cells a sweep: once the backlog is judged, the findings equal one recomputation from scratch', async () => {
    const r = await run(4, 'monitor', { maxKeys: 3 });
    expect(r.judged).toBeGreaterThan(r.keys);
  }, 120_000);

  it('two collectors sweeping at once: neither consumes the other’s work, the findings stay equal', async () => {
    await run(5, 'screen', { concurrent: true });
  }, 120_000);

  it('a sweep with nothing new reads no pairs; an outcome changed in one scope re-judges that scope only', async () => {
    const { db } = getDb();
    const sets = [['六四'], ['天气'], ['图书馆']];
    const w = await world(db, 'monitor', sets);
    const start = Date.now() - 3 * 3600_000;
    for (let i = 0; i < 12; i++) {
      await w.round(new Date(start + i * 60_000), sets, (t, k, r, arm) =>
        arm === 'test' && t[0] === '六四' && k === 'group' && r === 'CN' ? 'missing' : 'delivered',
      );
    }
    const now = new Date(start + 20 * 60_000);
    await clockPastWrites(db);
    const first = await recomputeCampaignFindings(db, w.campaign, now);
    expect(first).toMatchObject({ ran: true, keysJudged: 9, pairsRead: 9 * 12, backlog: 0 });
    const before = await findingsOfCampaign(db, w.campaign.id);

    const again = await recomputeCampaignFindings(db, w.campaign, now);
    expect(again).toMatchObject({ ran: true, keysJudged: 0, pairsRead: 0, findings: 0 });
    expect(await findingsOfCampaign(db, w.campaign.id)).toEqual(before);

    // one new pair, received only in group US→AU, of 天气
    await w.round(new Date(start + 13 * 60_000), [['天气']], () => 'delivered', undefined, {
      kind: 'group',
      recipient: 'AU',
    });
    await clockPastWrites(db);
    const one = await recomputeCampaignFindings(db, w.campaign, now);
    expect(one).toMatchObject({ ran: true, keysJudged: 1, pairsRead: 13 });
    const after = await findingsOfCampaign(db, w.campaign.id);
    const changed = after.filter((f) => {
      const b = before.find((x) => x.key === f.key);
      return b?.testTrials !== f.testTrials;
    });
    expect(changed.map((f) => f.key)).toEqual(['天气|testbed|group|US|AU']);
  }, 120_000);
});
