/**
 * Sets up the network's test accounts and conversations on the testbed, over its HTTP
 * API (testbed/API.md), as a person would: sign up, log in, open direct chats, make a
 * group. Idempotent: run again against a testbed that kept its state (stateFile), it
 * finds the same accounts and conversations with the same ids.
 */
import { randomBytes } from 'node:crypto';

export interface LocalAccount {
  handle: string;
  region: string;
  password: string;
}

export interface LocalConversation {
  /** The testbed's conversation id (the ref probes report). */
  ref: string;
  kind: 'direct' | 'group';
  members: string[];
  title?: string;
}

/** Accounts named `<prefix><region>-<n>` (lower case), e.g. `cn-1`, `cn-2`, `us-1`. */
export function planAccounts(
  regions: Readonly<Record<string, number>>,
  prefix = '',
  passwords: ReadonlyMap<string, string> = new Map(),
): LocalAccount[] {
  const out: LocalAccount[] = [];
  for (const [region, count] of Object.entries(regions)) {
    for (let i = 1; i <= count; i++) {
      const handle = `${prefix}${region.toLowerCase()}-${i}`;
      out.push({ handle, region, password: passwords.get(handle) ?? randomBytes(18).toString('base64url') });
    }
  }
  return out;
}

/**
 * Direct pairs across regions: for every two regions, the i-th account of one with the
 * i-th of the other (as many pairs as the smaller region has accounts).
 */
export function directPairs(accounts: readonly LocalAccount[]): [LocalAccount, LocalAccount][] {
  const byRegion = new Map<string, LocalAccount[]>();
  for (const a of accounts) byRegion.set(a.region, [...(byRegion.get(a.region) ?? []), a]);
  const regions = [...byRegion.keys()];
  const pairs: [LocalAccount, LocalAccount][] = [];
  for (let i = 0; i < regions.length; i++) {
    for (let j = i + 1; j < regions.length; j++) {
      const a = byRegion.get(regions[i]!) ?? [];
      const b = byRegion.get(regions[j]!) ?? [];
      for (let n = 0; n < Math.min(a.length, b.length); n++) pairs.push([a[n]!, b[n]!]);
    }
  }
  return pairs;
}

class TestbedClient {
  token = '';
  constructor(
    private readonly url: string,
    readonly account: LocalAccount,
  ) {}

  async call(method: string, path: string, body?: unknown): Promise<{ status: number; data: unknown }> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await fetch(this.url + path, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, data: text ? (JSON.parse(text) as unknown) : undefined };
  }

  /** Logs in; signs up first when the account does not exist yet. */
  async ensure(): Promise<void> {
    const { handle, password, region } = this.account;
    let login = await this.call('POST', '/api/login', { handle, password });
    if (login.status === 401) {
      const up = await this.call('POST', '/api/accounts', { handle, password, region });
      if (up.status !== 201)
        throw new Error(`testbed sign-up of ${handle}: ${up.status} ${JSON.stringify(up.data)}`);
      login = await this.call('POST', '/api/login', { handle, password });
    }
    if (login.status !== 200)
      throw new Error(`testbed login of ${handle}: ${login.status} ${JSON.stringify(login.data)}`);
    this.token = String((login.data as { token: unknown }).token);
  }

  async conversation(body: unknown): Promise<LocalConversation> {
    const r = await this.call('POST', '/api/conversations', body);
    if (r.status !== 200) throw new Error(`testbed conversation: ${r.status} ${JSON.stringify(r.data)}`);
    return toConversation(r.data);
  }

  async conversations(): Promise<LocalConversation[]> {
    const r = await this.call('GET', '/api/conversations');
    if (r.status !== 200 || !Array.isArray(r.data)) throw new Error(`testbed conversations: ${r.status}`);
    return r.data.map(toConversation);
  }
}

function toConversation(raw: unknown): LocalConversation {
  const c = raw as { id: string; kind: 'direct' | 'group'; members: string[]; title?: string };
  return { ref: c.id, kind: c.kind, members: [...c.members].sort(), ...(c.title ? { title: c.title } : {}) };
}

/**
 * Signs up (or logs in) every account and makes the direct pairs and one group with
 * everyone, titled `groupTitle`; an existing group of that title and the same members is reused.
 */
export async function setUpPlatform(
  testbedUrl: string,
  accounts: readonly LocalAccount[],
  groupTitle: string,
): Promise<LocalConversation[]> {
  const clients = new Map(accounts.map((a) => [a.handle, new TestbedClient(testbedUrl, a)]));
  for (const c of clients.values()) await c.ensure();
  const out: LocalConversation[] = [];
  for (const [a, b] of directPairs(accounts)) {
    out.push(await clients.get(a.handle)!.conversation({ kind: 'direct', with: b.handle }));
  }
  if (accounts.length >= 2) {
    const owner = clients.get(accounts[0]!.handle)!;
    const members = accounts.map((a) => a.handle).sort();
    const existing = (await owner.conversations()).find(
      (c) => c.kind === 'group' && c.title === groupTitle && c.members.join() === members.join(),
    );
    out.push(
      existing ??
        (await owner.conversation({
          kind: 'group',
          title: groupTitle,
          members: accounts.slice(1).map((a) => a.handle),
        })),
    );
  }
  return out;
}
