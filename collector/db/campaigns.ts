/** Term lists, campaigns and rounds. */
import { desc, eq, inArray, sql } from 'drizzle-orm';
import type { CampaignMode, ConversationSelection } from '../../protocol/index.ts';
import { type CanaryInsert, insertCanaries } from './canaries.ts';
import { type Queryable, rows } from './open.ts';
import { campaigns, rounds, termLists, terms } from './schema.ts';

export interface TermListRow {
  id: string;
  name: string;
  source: string | null;
  termSets: number;
  createdAt: Date;
}

/** Creates a term list with its term sets (already NFC-normalised); null if the name is taken. */
export async function createTermList(
  q: Queryable,
  input: { name: string; source?: string | undefined; termSets: string[][] },
): Promise<TermListRow | null> {
  return q.transaction(async (tx) => {
    const [list] = await tx
      .insert(termLists)
      .values({ name: input.name, source: input.source ?? null })
      .onConflictDoNothing({ target: termLists.name })
      .returning();
    if (!list) return null;
    if (input.termSets.length > 0) {
      await tx.execute(sql`
        insert into terms (term_list_id, line, term_set)
        select ${list.id}::uuid, t.n, array(select jsonb_array_elements_text(t.s::jsonb))
        from unnest(${sql.param(input.termSets.map((s) => JSON.stringify(s)))}::text[]) with ordinality as t(s, n)`);
    }
    return {
      id: list.id,
      name: list.name,
      source: list.source,
      termSets: input.termSets.length,
      createdAt: list.createdAt,
    };
  });
}

export async function listTermLists(q: Queryable): Promise<TermListRow[]> {
  return q
    .select({
      id: termLists.id,
      name: termLists.name,
      source: termLists.source,
      termSets: sql<number>`(select count(*)::int from terms t where t.term_list_id = ${termLists.id})`,
      createdAt: termLists.createdAt,
    })
    .from(termLists)
    .orderBy(termLists.createdAt);
}

/** Term sets of these lists, in list then line order. */
export async function termSetsOf(q: Queryable, termListIds: string[]): Promise<string[][]> {
  if (termListIds.length === 0) return [];
  const found = await q
    .select({ termSet: terms.termSet })
    .from(terms)
    .where(inArray(terms.termListId, termListIds))
    .orderBy(terms.termListId, terms.line);
  return found.map((r) => r.termSet);
}

export async function existingTermListIds(q: Queryable, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const found = await q.select({ id: termLists.id }).from(termLists).where(inArray(termLists.id, ids));
  return found.map((r) => r.id);
}

export interface CampaignInput {
  name: string;
  mode: CampaignMode;
  termListIds: string[];
  conversations: ConversationSelection;
  cadenceCron: string;
  deadlineSeconds: number;
  termSetsPerRound: number;
  /** Default 1 (decision 012). */
  minIndependentProbes?: number | undefined;
  seed: string;
  startsAt: Date;
  endsAt: Date | null;
}

/** A term set the planner left out of a round, and why (e.g. no control free of tested terms). */
export interface SkippedTermSet {
  termSet: string[];
  reason: string;
  /** Conversations (refs) it was skipped in. */
  conversations: string[];
}

export type CampaignRow = typeof campaigns.$inferSelect & {
  rounds: number;
  canaries: number;
  /** Term sets the campaign's latest round could not plan. */
  skipped: SkippedTermSet[];
};

export async function createCampaign(q: Queryable, input: CampaignInput): Promise<CampaignRow> {
  const [row] = await q
    .insert(campaigns)
    .values({
      name: input.name,
      mode: input.mode,
      termListIds: input.termListIds,
      conversationSelection: input.conversations,
      cadenceCron: input.cadenceCron,
      deadlineSeconds: input.deadlineSeconds,
      termSetsPerRound: input.termSetsPerRound,
      minIndependentProbes: input.minIndependentProbes ?? 1,
      seed: input.seed,
      startsAt: input.startsAt,
      endsAt: input.endsAt,
    })
    .returning();
  if (!row) throw new Error('campaign insert returned nothing');
  return { ...row, rounds: 0, canaries: 0, skipped: [] };
}

export async function listCampaigns(q: Queryable): Promise<CampaignRow[]> {
  const list = await q.select().from(campaigns).orderBy(desc(campaigns.createdAt));
  const counts = await rows<{
    id: string;
    rounds: number;
    canaries: number;
    skipped: SkippedTermSet[] | null;
  }>(
    q,
    sql`select c.id,
          (select count(*)::int from rounds r where r.campaign_id = c.id) as rounds,
          (select count(*)::int from canaries k where k.campaign_id = c.id) as canaries,
          (select r.skipped from rounds r where r.campaign_id = c.id order by r.round_at desc limit 1) as skipped
        from campaigns c`,
  );
  const byId = new Map(counts.map((c) => [c.id, c]));
  return list.map((c) => ({
    ...c,
    rounds: byId.get(c.id)?.rounds ?? 0,
    canaries: byId.get(c.id)?.canaries ?? 0,
    skipped: byId.get(c.id)?.skipped ?? [],
  }));
}

export async function activeCampaigns(q: Queryable, now: Date): Promise<(typeof campaigns.$inferSelect)[]> {
  return q
    .select()
    .from(campaigns)
    .where(
      sql`${campaigns.active} and ${campaigns.startsAt} <= ${now.toISOString()}::timestamptz
          and (${campaigns.endsAt} is null or ${campaigns.endsAt} > ${now.toISOString()}::timestamptz)`,
    );
}

export async function lastRoundAt(q: Queryable, campaignId: string): Promise<Date | null> {
  const [row] = await q
    .select({ at: sql<string | null>`max(${rounds.roundAt})` })
    .from(rounds)
    .where(eq(rounds.campaignId, campaignId));
  return row?.at ? new Date(row.at) : null;
}

/**
 * Inserts a round and its canaries in one transaction. Unique (campaign, round_at) makes
 * this idempotent across collectors: the loser of a race gets false and writes nothing.
 */
export async function insertRound(
  q: Queryable,
  input: {
    id: string;
    campaignId: string;
    roundAt: Date;
    seed: string;
    rngAlgorithm: string;
    skipped?: SkippedTermSet[];
  },
  canaries: CanaryInsert[],
): Promise<{ created: boolean; canaries: number }> {
  return q.transaction(async (tx) => {
    const [round] = await tx
      .insert(rounds)
      .values(input)
      .onConflictDoNothing({ target: [rounds.campaignId, rounds.roundAt] })
      .returning({ id: rounds.id });
    if (!round) return { created: false, canaries: 0 };
    await insertCanaries(tx, canaries);
    return { created: true, canaries: canaries.length };
  });
}

export interface SelectedConversation {
  id: string;
  platform: string;
  ref: string;
  kind: 'direct' | 'group';
  /** Known accounts in it: id, handle, region, and whether active. */
  members: { accountId: string; handle: string; region: string; active: boolean }[];
}

export async function selectConversations(
  q: Queryable,
  sel: ConversationSelection,
): Promise<SelectedConversation[]> {
  const found = await rows<{
    id: string;
    platform: string;
    ref: string;
    kind: 'direct' | 'group';
    accountId: string;
    handle: string;
    region: string;
    state: string;
  }>(
    q,
    sql`select cv.id, cv.platform, cv.ref, cv.kind, a.id as "accountId", a.handle, a.region, a.state
        from conversations cv
        join conversation_members m on m.conversation_id = cv.id
        join accounts a on a.platform = cv.platform and a.handle = m.handle
        where (${sel.platform ?? null}::text is null or cv.platform = ${sel.platform ?? null}::text)
          and (${sel.kind && sel.kind !== 'any' ? sel.kind : null}::text is null or cv.kind = ${sel.kind && sel.kind !== 'any' ? sel.kind : null}::text)
          and (${sel.refs ? sql.param(sel.refs) : null}::text[] is null or cv.ref = any(${sel.refs ? sql.param(sel.refs) : null}::text[]))
        order by cv.platform, cv.ref, a.handle`,
  );
  const byId = new Map<string, SelectedConversation>();
  for (const r of found) {
    let c = byId.get(r.id);
    if (!c) {
      c = { id: r.id, platform: r.platform, ref: r.ref, kind: r.kind, members: [] };
      byId.set(r.id, c);
    }
    c.members.push({
      accountId: r.accountId,
      handle: r.handle,
      region: r.region,
      active: r.state === 'active',
    });
  }
  return [...byId.values()];
}
