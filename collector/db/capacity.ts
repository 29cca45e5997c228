/** Accounts' send capacity as their probes report it, and the canaries that already claim it. */
import { sql } from 'drizzle-orm';
import type { SendCapacity } from '../../protocol/index.ts';
import type { ProbeCheckins, SenderLoad } from '../capacity.ts';
import { RECEIVED_SINCE_CANARY } from './events.ts';
import { type Queryable, rows } from './open.ts';

/**
 * Stores what each of the probe's accounts reported it can send; an account reported without
 * it (an older probe) loses what it had, and is planned with the defaults.
 */
export async function recordSendCapacity(
  q: Queryable,
  probeId: string,
  reported: readonly { platform: string; handle: string; capacity?: SendCapacity | undefined }[],
  at: Date,
): Promise<void> {
  if (reported.length === 0) return;
  await q.execute(sql`
    update accounts a set capacity = r.capacity::jsonb,
      capacity_at = case when r.capacity is null then null else ${at.toISOString()}::timestamptz end
    from unnest(${sql.param(reported.map((a) => a.platform))}::text[],
                ${sql.param(reported.map((a) => a.handle))}::text[],
                ${sql.param(reported.map((a) => (a.capacity ? JSON.stringify(a.capacity) : null)))}::text[])
      as r(platform, handle, capacity)
    where a.platform = r.platform and a.handle = r.handle and a.probe_id = ${probeId}::uuid`);
}

/** How far back the planner looks at what an account really sent (SenderLoad.recent). */
export const RECENT_MS = 60_000;

/**
 * Per sender account: its last capacity report, what it sent since, and the canaries (of any
 * campaign, rounds and follow-ups alike) planned for it that are not reported sent, rejected or
 * failed and compete for sends in [from, until]: their deadline is after `from` and their send
 * time before `until`. And what it did with the canaries whose deadline fell in the minute
 * before `from`: how many it sent (or the platform refused), how many its probe gave up as
 * `deadline_missed` (index canaries (sender, deadline), events by canary).
 */
export async function senderLoads(
  q: Queryable,
  accountIds: readonly string[],
  from: Date,
  until: Date,
): Promise<Map<string, SenderLoad>> {
  const out = new Map<string, SenderLoad>();
  if (accountIds.length === 0) return out;
  const fromIso = from.toISOString();
  const recentFrom = new Date(from.getTime() - RECENT_MS).toISOString();
  const found = await rows<{
    id: string;
    capacity: SendCapacity | null;
    capacityAt: string | null;
    outstanding: number;
    sent: number;
    recentSent: number;
    recentMissed: number;
  }>(
    q,
    sql`select a.id, a.capacity, a.capacity_at as "capacityAt",
          (select count(*)::int from canaries c
            where c.sender_account_id = a.id
              and c.deadline_at > ${from.toISOString()}::timestamptz
              and c.send_at < ${until.toISOString()}::timestamptz
              and not exists (select 1 from events e
                              where e.canary_id = c.id and e.type in ('sent', 'rejected', 'failed')
                                and ${RECEIVED_SINCE_CANARY})) as outstanding,
          (case when a.capacity_at is null then 0 else
            (select count(*)::int from canaries c
              join events e on e.canary_id = c.id and e.type in ('sent', 'rejected')
              where c.sender_account_id = a.id and c.deadline_at > a.capacity_at
                and e.received_at > a.capacity_at) end) as sent,
          rc."recentSent", rc."recentMissed"
        from accounts a
          -- the account's canaries due in the last RECENT_MS, read once: how many it sent (or the
          -- platform refused), how many its probe gave up as deadline_missed
          cross join lateral (
            select count(*) filter (where exists (select 1 from events e
                      where e.canary_id = c.id and e.type in ('sent', 'rejected')
                        and ${RECEIVED_SINCE_CANARY}))::int as "recentSent",
                   count(*) filter (where exists (select 1 from events e
                      where e.canary_id = c.id and e.type = 'failed'
                        and e.raw->>'failure' = 'deadline_missed' and ${RECEIVED_SINCE_CANARY}))::int as "recentMissed"
            from canaries c
            where c.sender_account_id = a.id
              and c.deadline_at > ${recentFrom}::timestamptz and c.deadline_at <= ${fromIso}::timestamptz) rc
        where a.id = any(${sql.param([...accountIds])}::uuid[])`,
  );
  for (const r of found) {
    out.set(r.id, {
      capacity: r.capacity ?? undefined,
      reportedAt: r.capacityAt ? new Date(r.capacityAt) : undefined,
      sentSinceReport: r.sent,
      outstanding: r.outstanding,
      recent: { sent: r.recentSent, missed: r.recentMissed, spanMs: RECENT_MS },
    });
  }
  return out;
}

/**
 * Per sender account: its probe's last check-in and the gap between its last two (null before
 * them), from which the planner tells when the probe will hear of a canary planned now
 * (`nextCheckin`, capacity.ts).
 */
export async function senderCheckins(
  q: Queryable,
  accountIds: readonly string[],
): Promise<Map<string, ProbeCheckins>> {
  if (accountIds.length === 0) return new Map();
  const found = await rows<{ id: string; probeId: string; lastAt: string | null; gapMs: number | null }>(
    q,
    sql`select a.id, p.id as "probeId", p.last_checkin_at as "lastAt", p.checkin_gap_ms as "gapMs"
        from accounts a join probes p on p.id = a.probe_id
        where a.id = any(${sql.param([...accountIds])}::uuid[])`,
  );
  return new Map(
    found.map((r) => [
      r.id,
      {
        probeId: r.probeId,
        lastCheckinAt: r.lastAt ? new Date(r.lastAt) : undefined,
        gapMs: r.gapMs ?? undefined,
      },
    ]),
  );
}

/**
 * The campaign's round pairs not judged yet, per term set, conversation and sender region: test
 * canaries of its rounds whose deadline is after `after` (the planning time less the grace a
 * look waits past a deadline). Bounded by what the senders can have in flight; index canaries
 * (campaign, deadline).
 */
export async function pairsInFlight(
  q: Queryable,
  campaignId: string,
  after: Date,
): Promise<{ termSet: string[]; conversationId: string; region: string; pairs: number }[]> {
  return rows(
    q,
    sql`select c.term_set as "termSet", c.conversation_id as "conversationId", a.region,
          count(*)::int as pairs
        from canaries c join accounts a on a.id = c.sender_account_id
        where c.campaign_id = ${campaignId}::uuid and c.deadline_at > ${after.toISOString()}::timestamptz
          and c.kind = 'test' and c.round_id is not null
        group by 1, 2, 3`,
  );
}

/**
 * Pairs seen so far per term set × scope (findings.key) at its last sequential look: how close
 * each is to a decision (rounds spend their budget on the closest first).
 */
export async function pairsSoFar(q: Queryable, campaignId: string): Promise<Map<string, number>> {
  const found = await rows<{ key: string; pairs: number | null }>(
    q,
    sql`select key, (state->>'lastPairs')::int as pairs from sequential_states
        where campaign_id = ${campaignId}::uuid and settled_verdict is null`,
  );
  return new Map(found.map((r) => [r.key, r.pairs ?? 0]));
}

/** Whether the campaign has a screen or isolation running (rounds then leave it half the budget). */
export async function followupsRunning(q: Queryable, campaignId: string): Promise<boolean> {
  const [row] = await rows<{ n: number }>(
    q,
    sql`select count(*)::int as n from followups where campaign_id = ${campaignId}::uuid and status = 'running'`,
  );
  return (row?.n ?? 0) > 0;
}
