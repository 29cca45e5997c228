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

/** Inserts or refreshes conversations and replaces their member lists with the reported ones. */
export async function upsertConversations(q: Queryable, reported: ConversationInput[]): Promise<void> {
  if (reported.length === 0) return;
  // A probe holding several members of one group reports it once per account: merge them
  // (one row per conversation, members united), or the upsert would touch a row twice.
  const merged = new Map<string, ConversationInput>();
  for (const c of reported) {
    const key = `${c.platform}\u0000${c.ref}`;
    const seen = merged.get(key);
    merged.set(
      key,
      seen
        ? { ...seen, title: seen.title ?? c.title, members: [...new Set([...seen.members, ...c.members])] }
        : c,
    );
  }
  const input = [...merged.values()];
  const ids = await rows<{ id: string; platform: string; ref: string }>(
    q,
    sql`insert into conversations (platform, ref, kind, title)
        select * from unnest(${sql.param(input.map((c) => c.platform))}::text[],
          ${sql.param(input.map((c) => c.ref))}::text[], ${sql.param(input.map((c) => c.kind))}::text[],
          ${sql.param(input.map((c) => c.title ?? null))}::text[])
        on conflict (platform, ref) do update set
          kind = excluded.kind, title = coalesce(excluded.title, conversations.title), updated_at = now()
        returning id, platform, ref`,
  );
  const idByKey = new Map(ids.map((r) => [`${r.platform}\u0000${r.ref}`, r.id]));
  const convIds: string[] = [];
  const handles: string[] = [];
  for (const c of input) {
    const id = idByKey.get(`${c.platform}\u0000${c.ref}`);
    if (!id) throw new Error(`conversation ${c.platform}/${c.ref} was not upserted`);
    for (const h of new Set(c.members)) {
      convIds.push(id);
      handles.push(h);
    }
  }
  const allIds = [...new Set(idByKey.values())];
  await q.execute(sql`
    delete from conversation_members m
    where m.conversation_id = any(${sql.param(allIds)}::uuid[])
      and not exists (select 1 from unnest(${sql.param(convIds)}::uuid[], ${sql.param(handles)}::text[]) as n(c, h)
                      where n.c = m.conversation_id and n.h = m.handle)`);
  await q.execute(sql`
    insert into conversation_members (conversation_id, handle)
    select * from unnest(${sql.param(convIds)}::uuid[], ${sql.param(handles)}::text[])
    on conflict do nothing`);
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
