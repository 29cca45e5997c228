/** Accounts (held by one probe each) and the conversations they are in. Bulk writes use unnest. */
import { and, eq, sql } from 'drizzle-orm';
import { type Queryable, rows } from './open.ts';
import { accounts, conversations, probes } from './schema.ts';

export interface AccountInput {
  platform: string;
  handle: string;
  region: string;
  adapterName: string;
  adapterVersion: string;
  clientVersion?: string | undefined;
  state: 'active' | 'quarantined' | 'login_required' | 'quiet';
}

export interface AccountRow {
  id: string;
  probeId: string;
  platform: string;
  handle: string;
  region: string;
}

/** Accounts by (platform, handle), whoever owns them. */
export async function findAccounts(
  q: Queryable,
  keys: { platform: string; handle: string }[],
): Promise<AccountRow[]> {
  if (keys.length === 0) return [];
  return rows<AccountRow>(
    q,
    sql`select a.id, a.probe_id as "probeId", a.platform, a.handle, a.region
        from accounts a
        join unnest(${sql.param(keys.map((k) => k.platform))}::text[],
                    ${sql.param(keys.map((k) => k.handle))}::text[]) as k(platform, handle)
          on a.platform = k.platform and a.handle = k.handle`,
  );
}

/**
 * Inserts or refreshes the probe's accounts. Accounts owned by another probe are left
 * alone and returned, so the caller can refuse the request.
 */
export async function upsertAccounts(
  q: Queryable,
  probeId: string,
  input: AccountInput[],
): Promise<{ foreign: AccountRow[] }> {
  if (input.length === 0) return { foreign: [] };
  const existing = await findAccounts(q, input);
  const foreign = existing.filter((a) => a.probeId !== probeId);
  if (foreign.length > 0) return { foreign };
  const col = <K extends keyof AccountInput>(k: K) => sql.param(input.map((a) => a[k] ?? null));
  await q.execute(sql`
    insert into accounts (probe_id, platform, handle, region, adapter_name, adapter_version, client_version, state)
    select ${probeId}::uuid, * from unnest(${col('platform')}::text[], ${col('handle')}::text[],
      ${col('region')}::text[], ${col('adapterName')}::text[], ${col('adapterVersion')}::text[],
      ${col('clientVersion')}::text[], ${col('state')}::text[])
    on conflict (platform, handle) do update set
      region = excluded.region, adapter_name = excluded.adapter_name,
      adapter_version = excluded.adapter_version, client_version = excluded.client_version,
      state = excluded.state, last_seen_at = now()
    where accounts.probe_id = excluded.probe_id`);
  return { foreign: [] };
}

export interface ConversationInput {
  platform: string;
  ref: string;
  kind: 'direct' | 'group';
  title?: string | undefined;
  members: string[];
}

/**
 * Stores the probe's own view of each reported conversation and derives what the rest of the
 * collector uses (decision 012): a conversation's kind changes only when every probe's view
 * agrees on it, and its members are the accounts each probe reports for itself, so a probe can
 * neither add nor remove another probe's accounts (the expected recipients of a canary).
 */
export async function recordConversationViews(
  q: Queryable,
  probeId: string,
  reported: ConversationInput[],
): Promise<void> {
  if (reported.length > 0) {
    // A probe holding several members of one group reports it once per account: merge them
    // (one view per conversation, members united), or the upsert would touch a row twice.
    const merged = new Map<string, ConversationInput>();
    for (const c of reported) {
      const key = `${c.platform}\u0000${c.ref}`;
      const seen = merged.get(key);
      merged.set(
        key,
        seen
          ? { ...seen, title: seen.title ?? c.title, members: [...new Set([...seen.members, ...c.members])] }
          : { ...c, members: [...new Set(c.members)] },
      );
    }
    const input = [...merged.values()];
    const col = (f: (c: ConversationInput) => unknown) => sql.param(input.map(f));
    // A conversation seen for the first time takes its first reporter's kind and title.
    await q.execute(sql`
      insert into conversations (platform, ref, kind, title)
      select * from unnest(${col((c) => c.platform)}::text[], ${col((c) => c.ref)}::text[],
        ${col((c) => c.kind)}::text[], ${col((c) => c.title ?? null)}::text[])
      on conflict (platform, ref) do nothing`);
    await q.execute(sql`
      insert into conversation_views (conversation_id, probe_id, kind, title, members)
      select cv.id, ${probeId}::uuid, r.kind, r.title, array(select jsonb_array_elements_text(r.members::jsonb))
      from unnest(${col((c) => c.platform)}::text[], ${col((c) => c.ref)}::text[], ${col((c) => c.kind)}::text[],
        ${col((c) => c.title ?? null)}::text[], ${col((c) => JSON.stringify(c.members))}::text[])
        as r(platform, ref, kind, title, members)
      join conversations cv on cv.platform = r.platform and cv.ref = r.ref
      on conflict (conversation_id, probe_id) do update set
        kind = excluded.kind, title = excluded.title, members = excluded.members, updated_at = now()`);
  }
  await deriveConversations(q, probeId);
}

/** Re-derives kind, title and members of every conversation the probe has a view of. */
async function deriveConversations(q: Queryable, probeId: string): Promise<void> {
  const touched = sql`(select conversation_id from conversation_views where probe_id = ${probeId}::uuid)`;
  await q.execute(sql`
    update conversations cv set kind = v.kind, updated_at = now()
    from (select conversation_id, min(kind) as kind from conversation_views
          where conversation_id in ${touched}
          group by conversation_id having count(distinct kind) = 1) v
    where cv.id = v.conversation_id and cv.kind <> v.kind`);
  await q.execute(sql`
    update conversations cv set title = t.title
    from (select distinct on (conversation_id) conversation_id, title from conversation_views
          where conversation_id in ${touched} and title is not null
          order by conversation_id, first_seen_at, probe_id) t
    where cv.id = t.conversation_id and cv.title is distinct from t.title`);
  const owned = sql`
    select distinct v.conversation_id, a.handle
    from conversation_views v
    join conversations cv on cv.id = v.conversation_id
    join accounts a on a.probe_id = v.probe_id and a.platform = cv.platform and a.handle = any(v.members)
    where v.conversation_id in ${touched}`;
  await q.execute(sql`
    delete from conversation_members m
    where m.conversation_id in ${touched}
      and not exists (select 1 from (${owned}) o where o.conversation_id = m.conversation_id and o.handle = m.handle)`);
  await q.execute(sql`
    insert into conversation_members (conversation_id, handle)
    select conversation_id, handle from (${owned}) o
    on conflict do nothing`);
}

export interface ConversationViewRow {
  conversationId: string;
  platform: string;
  ref: string;
  /** The kind the collector uses (decision 012). */
  kind: 'direct' | 'group';
  probeId: string;
  viewKind: 'direct' | 'group';
  title: string | null;
  members: string[];
  updatedAt: Date | string;
  /** Of the view's members: handles that are accounts, with the probe holding each. */
  owners: { handle: string; probeId: string }[];
}

/**
 * Views of conversations that more than one probe reports (newest conversations first, at
 * most `limit` conversations), with the owners of the accounts each view lists.
 */
export async function sharedConversationViews(q: Queryable, limit: number): Promise<ConversationViewRow[]> {
  return rows<ConversationViewRow>(
    q,
    sql`with shared as (
          select conversation_id from conversation_views group by conversation_id
          having count(*) > 1 order by max(updated_at) desc limit ${limit})
        select cv.id as "conversationId", cv.platform, cv.ref, cv.kind, v.probe_id as "probeId",
          v.kind as "viewKind", v.title, v.members, v.updated_at as "updatedAt",
          coalesce((select jsonb_agg(jsonb_build_object('handle', a.handle, 'probeId', a.probe_id) order by a.handle)
                    from accounts a where a.platform = cv.platform and a.handle = any(v.members)), '[]'::jsonb) as owners
        from shared s
        join conversations cv on cv.id = s.conversation_id
        join conversation_views v on v.conversation_id = cv.id
        order by cv.platform, cv.ref, v.probe_id`,
  );
}

export interface AccountSummary {
  id: string;
  probeId: string;
  platform: string;
  handle: string;
  region: string;
  state: string;
  adapterName: string;
  adapterVersion: string;
  probeCountry: string;
  lastSeenAt: Date;
}

export async function listAccounts(q: Queryable): Promise<AccountSummary[]> {
  return q
    .select({
      id: accounts.id,
      probeId: accounts.probeId,
      platform: accounts.platform,
      handle: accounts.handle,
      region: accounts.region,
      state: accounts.state,
      adapterName: accounts.adapterName,
      adapterVersion: accounts.adapterVersion,
      probeCountry: probes.country,
      lastSeenAt: accounts.lastSeenAt,
    })
    .from(accounts)
    .innerJoin(probes, eq(probes.id, accounts.probeId))
    .orderBy(accounts.platform, accounts.handle);
}

export async function findConversationId(
  q: Queryable,
  platform: string,
  ref: string,
): Promise<string | undefined> {
  const [row] = await q
    .select({ id: conversations.id })
    .from(conversations)
    .where(and(eq(conversations.platform, platform), eq(conversations.ref, ref)));
  return row?.id;
}
