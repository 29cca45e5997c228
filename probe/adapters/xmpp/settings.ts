/**
 * The xmpp adapter's account settings (probe config `settings`, or built from the
 * `server` / `accounts` / `groups` of an accounts file, issue 7) and its conversation
 * refs. Validated once when the adapter is created; a bad value is an AdapterError
 * naming the field.
 *
 * Conversation refs (stable, and the same string on both sides of a chat):
 *   direct:<jid1>,<jid2>   a one-to-one chat between two bare JIDs, sorted; a domain
 *                          cannot contain ',' so the split is unambiguous.
 *   group:<room-jid>       a MUC room, e.g. group:g1@conference.localhost
 * `send` also accepts `direct:<peer-jid>` (relative to the sending account).
 */
import { AdapterError } from '../types.ts';

export type TlsMode = 'none' | 'starttls' | 'direct';

export interface GroupSetting {
  room: string;
  members: string[];
}

export interface XmppSettings {
  host: string;
  port: number;
  domain: string;
  tls: TlsMode;
  resource: string;
  /** Nickname in rooms; default the account's local part. */
  nick: string;
  /** Handles (bare JIDs) of the other configured accounts: the direct conversations. */
  peers: string[];
  groups: GroupSetting[];
  connectTimeoutMs: number;
  sendTimeoutMs: number;
  /** Extra wait after the ordering barrier for an error that travels another way. */
  bounceWaitMs: number;
  joinTimeoutMs: number;
  keepaliveMs: number;
  reconnect: { minMs: number; maxMs: number; giveUpMs: number };
}

const JID = /^[^\s@/"&'<>:]+@[a-z0-9.-]+$/i;

export function bareJid(jid: string): string {
  const slash = jid.indexOf('/');
  return (slash === -1 ? jid : jid.slice(0, slash)).toLowerCase();
}

export function domainOf(jid: string): string {
  const bare = bareJid(jid);
  return bare.slice(bare.indexOf('@') + 1);
}

export function directRef(a: string, b: string): string {
  return `direct:${[bareJid(a), bareJid(b)].sort().join(',')}`;
}

export function groupRef(room: string): string {
  return `group:${bareJid(room)}`;
}

export type ParsedRef = { kind: 'direct'; peer: string } | { kind: 'group'; room: string };

/** The target of a conversation ref from `self`'s side; undefined for a ref that is not self's. */
export function parseRef(ref: string, self: string): ParsedRef | undefined {
  const me = bareJid(self);
  if (ref.startsWith('group:')) {
    const room = ref.slice('group:'.length).toLowerCase();
    return JID.test(room) ? { kind: 'group', room } : undefined;
  }
  if (!ref.startsWith('direct:')) return undefined;
  const jids = ref.slice('direct:'.length).toLowerCase().split(',');
  if (jids.length === 1 && jids[0] && JID.test(jids[0]) && jids[0] !== me)
    return { kind: 'direct', peer: jids[0] };
  const [a, b] = jids;
  if (jids.length !== 2 || !a || !b || !JID.test(a) || !JID.test(b) || a === b) return undefined;
  if (a === me) return { kind: 'direct', peer: b };
  if (b === me) return { kind: 'direct', peer: a };
  return undefined;
}

export function parseSettings(handle: string, raw: Record<string, unknown>): XmppSettings {
  const bad = (field: string, want: string): never => {
    throw new AdapterError('adapter_error', `xmpp account ${handle}: settings.${field} must be ${want}`);
  };
  if (!JID.test(handle)) {
    throw new AdapterError(
      'adapter_error',
      `xmpp account handle must be a bare JID (user@domain), got "${handle}"`,
    );
  }
  const me = bareJid(handle);
  const num = (field: string, d: number, min = 1): number => {
    const v = raw[field];
    if (v === undefined) return d;
    return typeof v === 'number' && Number.isFinite(v) && v >= min ? v : bad(field, `a number >= ${min}`);
  };
  const str = (field: string, d: string): string => {
    const v = raw[field];
    if (v === undefined) return d;
    return typeof v === 'string' && v.length > 0 ? v : bad(field, 'a non-empty string');
  };
  // Accept the accounts file's `server: { host, port, domain, tls }` as well as flat settings.
  const server = (typeof raw.server === 'object' && raw.server !== null ? raw.server : {}) as Record<
    string,
    unknown
  >;
  const merged: Record<string, unknown> = { ...server, ...raw };

  const domain =
    typeof merged.domain === 'string' && merged.domain ? merged.domain.toLowerCase() : domainOf(me);
  const host = typeof merged.host === 'string' && merged.host ? merged.host : domain;
  const port = merged.port === undefined ? 5222 : merged.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    bad('port', 'a TCP port');
  const tlsRaw = merged.tls ?? true;
  let tls: TlsMode;
  if (tlsRaw === false || tlsRaw === 'none') tls = 'none';
  else if (tlsRaw === true || tlsRaw === 'starttls') tls = 'starttls';
  else if (tlsRaw === 'direct') tls = 'direct';
  else tls = bad('tls', 'false, true, "starttls" or "direct"');

  const handles = (v: unknown, field: string): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) return bad(field, 'a list of JIDs');
    return v.map((item, i) => {
      const h = typeof item === 'object' && item !== null ? (item as { handle?: unknown }).handle : item;
      return typeof h === 'string' && JID.test(h)
        ? bareJid(h)
        : bad(`${field}[${i}]`, 'a bare JID (or { handle })');
    });
  };
  const peers = [...new Set(handles(merged.accounts, 'accounts'))].filter((h) => h !== me);
  const groups: GroupSetting[] = [];
  const rawGroups = merged.groups ?? [];
  if (!Array.isArray(rawGroups)) bad('groups', 'a list of { room, members }');
  (rawGroups as unknown[]).forEach((g, i) => {
    const room = typeof g === 'object' && g !== null ? (g as { room?: unknown }).room : undefined;
    if (typeof room !== 'string' || !JID.test(room))
      bad(`groups[${i}].room`, 'a room JID (room@conference.domain)');
    const members = handles((g as { members?: unknown }).members, `groups[${i}].members`);
    if (members.length === 0 || members.includes(me)) {
      groups.push({ room: bareJid(room as string), members: members.length === 0 ? [me] : members });
    }
  });

  const reconnect = (
    typeof raw.reconnect === 'object' && raw.reconnect !== null ? raw.reconnect : {}
  ) as Record<string, unknown>;
  const rnum = (field: string, d: number) => {
    const v = reconnect[field];
    if (v === undefined) return d;
    return typeof v === 'number' && v > 0 ? v : bad(`reconnect.${field}`, 'a positive number');
  };
  return {
    host,
    port: port as number,
    domain,
    tls,
    resource: str('resource', 'silentdrop'),
    nick: str('nick', me.slice(0, me.indexOf('@'))),
    peers,
    groups,
    connectTimeoutMs: num('connect_timeout_ms', 15_000),
    sendTimeoutMs: num('send_timeout_ms', 10_000),
    bounceWaitMs: num('bounce_wait_ms', 0, 0),
    joinTimeoutMs: num('join_timeout_ms', 10_000),
    keepaliveMs: num('keepalive_ms', 30_000),
    reconnect: {
      minMs: rnum('min_ms', 250),
      maxMs: rnum('max_ms', 30_000),
      giveUpMs: rnum('give_up_ms', 600_000),
    },
  };
}
