/**
 * In-memory platform state: accounts, tokens, conversations, and each account's
 * timeline (its own sent messages and the messages delivered to it, in the order they
 * reached it). Every timeline entry has a per-account sequence number, which is the
 * SSE event id that `Last-Event-ID` resumes from.
 */
import type { PasswordHash } from './auth.ts';
import type { ConversationKind } from './policy.ts';

export interface Account {
  handle: string;
  region: string;
  password: PasswordHash;
}

export interface Conversation {
  id: string;
  kind: ConversationKind;
  members: string[];
  title?: string;
}

/** A message as one account's client sees it (the API's message shape). */
export interface MessageView {
  id: string;
  conversation: string;
  from: string;
  text: string;
  /** When the platform accepted it (ISO 8601). */
  at: string;
  /** When it reached this account (ISO 8601); for one's own message, equal to `at`. */
  delivered_at: string;
}

export interface TimelineEntry {
  seq: number;
  /** `own`: the account sent it; `delivered`: it reached the account from someone else. */
  kind: 'own' | 'delivered';
  message: MessageView;
}

type Listener = (entry: TimelineEntry) => void;

/** The whole state as plain JSON (for `TestbedOptions.stateFile`); passwords stay scrypt hashes. */
export interface StoreSnapshot {
  version: 1;
  accounts: { handle: string; region: string; salt: string; hash: string }[];
  /** SHA-256 keys of live tokens (never the tokens themselves) → handle. */
  tokens: [string, string][];
  conversations: Conversation[];
  timelines: Record<string, TimelineEntry[]>;
  /** Per account, the last sequence number given (entries may have been dropped since). */
  lastSeq?: Record<string, number>;
  nextConversation: number;
  nextMessage: number;
}

/**
 * How much history a timeline keeps. A local network left running (`npm start`) appends a
 * few thousand entries an hour to each account's timeline; kept for ever they grew the
 * process without bound and, with a state file, made every save a longer stall. A client
 * that resumes (SSE `Last-Event-ID`) after more than `retainMs` away misses what was
 * dropped, as on a platform that keeps only recent history.
 */
export interface HistoryLimits {
  /** Entries delivered longer ago than this are dropped (default 6 hours). */
  retainMs: number;
  /** At most this many entries per account, the oldest dropped first (default 50,000). */
  maxEntriesPerAccount: number;
}

export const DEFAULT_HISTORY: HistoryLimits = { retainMs: 6 * 3600_000, maxEntriesPerAccount: 50_000 };

export interface StoreOptions {
  history?: Partial<HistoryLimits>;
  /** The testbed's clock (epoch ms), for the age of entries. */
  now?: () => number;
}

export class Store {
  private readonly accounts = new Map<string, Account>();
  private readonly tokens = new Map<string, string>();
  private readonly conversations = new Map<string, Conversation>();
  private readonly directIndex = new Map<string, string>();
  private readonly timelines = new Map<string, TimelineEntry[]>();
  private readonly lastSeq = new Map<string, number>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private nextConversation = 1;
  private nextMessage = 1;
  private readonly history: HistoryLimits;
  private readonly now: () => number;
  /** Called after every change of state (persistence hooks in here). */
  onChange: (() => void) | undefined;

  constructor(options: StoreOptions = {}) {
    this.history = { ...DEFAULT_HISTORY, ...options.history };
    this.now = options.now ?? Date.now;
  }

  private changed(): void {
    this.onChange?.();
  }

  /** Drops the entries of `timeline` past the history limits (oldest first); true when any went. */
  private prune(timeline: TimelineEntry[]): boolean {
    const oldest = this.now() - this.history.retainMs;
    let drop = Math.max(0, timeline.length - this.history.maxEntriesPerAccount);
    while (drop < timeline.length && Date.parse(timeline[drop]!.message.delivered_at) < oldest) drop++;
    if (drop === 0) return false;
    timeline.splice(0, drop);
    return true;
  }

  /**
   * The state as plain JSON. Its timelines are copies (of the entry references), so a
   * snapshot being written out in steps does not change under the writer.
   */
  snapshot(): StoreSnapshot {
    return {
      version: 1,
      accounts: [...this.accounts.values()].map((a) => ({
        handle: a.handle,
        region: a.region,
        salt: a.password.salt.toString('base64'),
        hash: a.password.hash.toString('base64'),
      })),
      tokens: [...this.tokens.entries()],
      conversations: [...this.conversations.values()],
      timelines: Object.fromEntries([...this.timelines].map(([h, t]) => [h, t.slice()])),
      lastSeq: Object.fromEntries(this.lastSeq),
      nextConversation: this.nextConversation,
      nextMessage: this.nextMessage,
    };
  }

  /** A store holding a snapshot's state; throws on a snapshot it cannot read. */
  static fromSnapshot(snap: StoreSnapshot, options: StoreOptions = {}): Store {
    if (snap?.version !== 1) throw new Error('unknown testbed state version');
    const store = new Store(options);
    for (const a of snap.accounts) {
      store.accounts.set(a.handle, {
        handle: a.handle,
        region: a.region,
        password: { salt: Buffer.from(a.salt, 'base64'), hash: Buffer.from(a.hash, 'base64') },
      });
      const timeline = [...(snap.timelines[a.handle] ?? [])];
      // A state file written before `lastSeq` existed: its timelines were never pruned.
      const last = timeline.at(-1)?.seq ?? 0;
      const saved = snap.lastSeq?.[a.handle];
      const lastSeq = Number.isSafeInteger(saved) && (saved as number) >= last ? (saved as number) : last;
      store.lastSeq.set(a.handle, Number.isSafeInteger(lastSeq) ? lastSeq : 0);
      store.prune(timeline);
      store.timelines.set(a.handle, timeline);
    }
    for (const [key, handle] of snap.tokens) store.tokens.set(key, handle);
    for (const c of snap.conversations) {
      store.conversations.set(c.id, c);
      if (c.kind === 'direct') store.directIndex.set([...c.members].sort().join('\u0000'), c.id);
    }
    store.nextConversation = snap.nextConversation;
    store.nextMessage = snap.nextMessage;
    return store;
  }

  addAccount(account: Account): boolean {
    if (this.accounts.has(account.handle)) return false;
    this.accounts.set(account.handle, account);
    this.timelines.set(account.handle, []);
    this.lastSeq.set(account.handle, 0);
    this.changed();
    return true;
  }

  account(handle: string): Account | undefined {
    return this.accounts.get(handle);
  }

  addToken(key: string, handle: string): void {
    this.tokens.set(key, handle);
    this.changed();
  }

  removeToken(key: string): void {
    this.tokens.delete(key);
    this.changed();
  }

  accountByToken(key: string): Account | undefined {
    const handle = this.tokens.get(key);
    return handle === undefined ? undefined : this.accounts.get(handle);
  }

  /** The one direct conversation between two accounts, created on first use. */
  direct(a: string, b: string): Conversation {
    const key = [a, b].sort().join('\u0000');
    const existing = this.directIndex.get(key);
    const found = existing ? this.conversations.get(existing) : undefined;
    if (found) return found;
    const conv: Conversation = { id: `c${this.nextConversation++}`, kind: 'direct', members: [a, b].sort() };
    this.conversations.set(conv.id, conv);
    this.directIndex.set(key, conv.id);
    this.changed();
    return conv;
  }

  group(title: string, members: string[]): Conversation {
    const conv: Conversation = { id: `c${this.nextConversation++}`, kind: 'group', members, title };
    this.conversations.set(conv.id, conv);
    this.changed();
    return conv;
  }

  conversation(id: string): Conversation | undefined {
    return this.conversations.get(id);
  }

  conversationsOf(handle: string): Conversation[] {
    return [...this.conversations.values()].filter((c) => c.members.includes(handle));
  }

  newMessageId(): string {
    const id = `m${this.nextMessage++}`;
    this.changed();
    return id;
  }

  /** Append to an account's timeline and tell its live listeners (SSE streams). */
  append(handle: string, kind: TimelineEntry['kind'], message: MessageView): TimelineEntry | undefined {
    const timeline = this.timelines.get(handle);
    if (!timeline) return undefined;
    const seq = (this.lastSeq.get(handle) ?? 0) + 1;
    this.lastSeq.set(handle, seq);
    const entry: TimelineEntry = { seq, kind, message };
    timeline.push(entry);
    this.prune(timeline);
    this.changed();
    for (const listener of this.listeners.get(handle) ?? []) listener(entry);
    return entry;
  }

  timeline(handle: string): readonly TimelineEntry[] {
    return this.timelines.get(handle) ?? [];
  }

  subscribe(handle: string, listener: Listener): () => void {
    let set = this.listeners.get(handle);
    if (!set) {
      set = new Set();
      this.listeners.set(handle, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }
}
