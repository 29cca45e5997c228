/**
 * The probes of a test World (world.ts) against a censor written as a function: every
 * canary of a campaign due by `now` is sent by its sender's probe and seen 300 ms later by
 * every other member the censor spares, all as signed events through the real probe API.
 * For end-to-end tests of the collector's own steps on a simulated clock (`simulatedCampaign`).
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { createCampaign, createTermList } from '../db/campaigns.ts';
import { type Db, rows } from '../db/open.ts';
import { recomputeCampaignFindings } from '../findings.ts';
import { advanceFollowups } from '../followups.ts';
import { finaliseOutcomes } from '../outcomes.ts';
import { materialiseDueRounds } from '../rounds.ts';
import { signedPost, type TestProbe } from './probe.ts';
import type { World } from './world.ts';

export type Region = 'US' | 'CN' | 'AU';
const adapter = { name: 'testbed', version: '0.0.1' };

/** alice in the US, bob in CN and carol in AU (held by the CN probe), as in buildWorld. */
export function worldRegions(w: World): Record<string, Region> {
  return { [w.handles.alice]: 'US', [w.handles.bob]: 'CN', [w.handles.carol]: 'AU' };
}

/** A canary as the simulated probes need it to report its send and receipts. */
export interface DueCanary {
  id: string;
  text: string;
  nonce: string;
  sendAt: string;
  /** The sender's handle. */
  sender: string;
}

/**
 * Reports, through the real probe API, each canary sent by its sender when due and seen 300 ms
 * later by the members `seenBy` names (by handle), each event from the probe that holds the
 * account (alice: the US probe; bob and carol: the CN probe). Receipts go first: a canary's
 * deadline may be past, and a send alone would finalise as missing.
 */
export async function reportDeliveries(
  app: FastifyInstance,
  w: World,
  canaries: readonly DueCanary[],
  seenBy: (c: DueCanary) => readonly string[],
): Promise<void> {
  const region = worldRegions(w);
  const probeOf = (handle: string): TestProbe => (region[handle] === 'US' ? w.us : w.cn);
  const received = new Map<TestProbe, unknown[]>([
    [w.us, []],
    [w.cn, []],
  ]);
  const sent = new Map<TestProbe, unknown[]>([
    [w.us, []],
    [w.cn, []],
  ]);
  for (const c of canaries) {
    const at = new Date(c.sendAt).getTime();
    for (const r of seenBy(c).filter((m) => m !== c.sender)) {
      received.get(probeOf(r))?.push({
        type: 'received',
        event_id: randomUUID(),
        platform: 'testbed',
        account: r,
        conversation: w.group,
        at: new Date(at + 300).toISOString(),
        clock_offset_ms: 0,
        adapter,
        nonce: c.nonce,
        text: c.text,
      });
    }
    sent.get(probeOf(c.sender))?.push({
      type: 'sent',
      event_id: randomUUID(),
      platform: 'testbed',
      account: c.sender,
      conversation: w.group,
      at: new Date(at).toISOString(),
      clock_offset_ms: 0,
      adapter,
      canary_id: c.id,
      text: c.text,
    });
  }
  for (const batch of [received, sent]) {
    for (const p of [w.us, w.cn]) {
      const events = batch.get(p) ?? [];
      if (events.length === 0) continue;
      const res = await signedPost(app, p, '/probe/v1/events', { protocol: 1, events });
      expect(res.statusCode, res.body).toBe(200);
    }
  }
}

/** The campaign's canaries due by `now`, as reportDeliveries takes them. */
export async function dueCanaries(db: Db, campaignId: string, now: Date): Promise<DueCanary[]> {
  return rows<DueCanary>(
    db,
    sql`select c.id, c.text, c.nonce, c.send_at as "sendAt", a.handle as sender from canaries c
        join accounts a on a.id = c.sender_account_id
        where c.campaign_id = ${campaignId}::uuid and c.send_at <= ${now.toISOString()}::timestamptz`,
  );
}

/** The latest deadline of the campaign's canaries (epoch ms). */
export async function lastDeadlineOf(db: Db, campaignId: string): Promise<number> {
  const [r] = await rows<{ at: string }>(
    db,
    sql`select max(deadline_at) as at from canaries where campaign_id = ${campaignId}::uuid`,
  );
  return Date.parse(r?.at ?? '');
}

export function censoredDelivery(
  app: FastifyInstance,
  db: Db,
  w: World,
  campaignId: string,
  censored: (text: string, recipientRegion: Region) => boolean,
): (now: Date) => Promise<void> {
  const region = worldRegions(w);
  const members = Object.keys(region);
  const done = new Set<string>();
  return async (now: Date) => {
    const due = (await dueCanaries(db, campaignId, now)).filter((d) => !done.has(d.id));
    for (const c of due) done.add(c.id);
    await reportDeliveries(app, w, due, (c) => members.filter((m) => !censored(c.text, region[m] as Region)));
  };
}

const MINUTE = 60_000;

/**
 * A campaign on the world's group, started six hours ago with a round a minute and a 10 s
 * deadline, whose canaries the censor filters. `runUntil` runs the collector's sweep steps
 * (rounds → the probes' events → outcomes → findings → follow-ups) a simulated minute apart
 * until `done` holds or `maxSweeps` ran; it returns the number of sweeps.
 */
export async function simulatedCampaign(
  app: FastifyInstance,
  db: Db,
  w: World,
  o: {
    name: string;
    mode: 'isolate' | 'screen';
    termSets: string[][];
    termSetsPerRound: number;
    censored: (text: string, recipientRegion: Region) => boolean;
  },
): Promise<{ id: string; runUntil(done: () => Promise<boolean>, maxSweeps: number): Promise<number> }> {
  const start = Date.now() - 6 * 3600_000;
  const list = await createTermList(db, { name: `${o.name}-${w.group}`, termSets: o.termSets });
  const campaign = await createCampaign(db, {
    name: `${o.name}-${w.group}`,
    mode: o.mode,
    termListIds: list ? [list.id] : [],
    conversations: { platform: 'testbed', refs: [w.group] },
    cadenceCron: '* * * * *',
    deadlineSeconds: 10,
    termSetsPerRound: o.termSetsPerRound,
    seed: `${o.name}-${w.group}`,
    startsAt: new Date(start - MINUTE),
    endsAt: null,
  });
  const deliver = censoredDelivery(app, db, w, campaign.id, o.censored);
  let now = start;
  return {
    id: campaign.id,
    async runUntil(done, maxSweeps) {
      let sweeps = 0;
      for (; sweeps < maxSweeps && !(await done()); now += MINUTE, sweeps++) {
        const at = new Date(now);
        await materialiseDueRounds(db, at, MINUTE);
        await deliver(at);
        await finaliseOutcomes(db, at);
        await recomputeCampaignFindings(db, { id: campaign.id, mode: o.mode, deadlineSeconds: 10 }, at);
        // the simulated probes send what is due at each sweep: they hear of a step at once
        await advanceFollowups(db, at, { checkinIntervalMs: 0 });
      }
      return sweeps;
    },
  };
}

/**
 * An `isolate` campaign named `name` on `termSets` over the conversations `refs`, with a 3-s
 * deadline, started a minute ago, whose rounds come once a year: only the follow-ups a test
 * inserts send.
 */
export async function campaignWithoutRounds(db: Db, name: string, termSets: string[][], refs: string[]) {
  const list = await createTermList(db, { name, termSets });
  return createCampaign(db, {
    name,
    mode: 'isolate',
    termListIds: list ? [list.id] : [],
    conversations: { platform: 'testbed', refs },
    cadenceCron: '0 0 1 1 *',
    deadlineSeconds: 3,
    termSetsPerRound: 10,
    seed: name,
    startsAt: new Date(Date.now() - 60_000),
    endsAt: null,
  });
}
