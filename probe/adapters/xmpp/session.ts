/**
 * One account's XMPP session: log in, join rooms, send with bounce detection, hand
 * incoming messages to the observer, and reconnect (fresh client, exponential
 * backoff, rooms rejoined) after the connection drops.
 *
 * Bounce detection without guessing a wait: after a message, the session sends a
 * XEP-0199 ping to the service that handles the conversation (the peer's server for a
 * direct chat, the MUC service for a room). A server handles one sender's stanzas in
 * order, so an error the message caused (mod_firewall's BOUNCE, a MUC refusal) comes
 * back before the ping's answer. `bounce_wait_ms` adds a grace period for errors that
 * come back by another route.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { FailureCode } from '../../../protocol/index.ts';
import { classifyFailure } from '../../failures.ts';
import { AdapterError, type ObservedMessage, type SendResult } from '../types.ts';
import { createClient, disableNagle, stanzaError, type XmlElement, type XmppClient, xml } from './client.ts';
import { bareJid, directRef, domainOf, groupRef, type XmppSettings } from './settings.ts';

const NS_MUC = 'http://jabber.org/protocol/muc';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
const NS_PING = 'urn:xmpp:ping';
const NS_DELAY = 'urn:xmpp:delay';
const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_STANZA_ID = 'urn:xmpp:sid:0';
const NS_STARTTLS = 'urn:ietf:params:xml:ns:xmpp-tls';

interface Room {
  jid: string;
  nick: string;
  joined: boolean;
  /** Occupant nick → real bare JID, where the room tells us. */
  occupants: Map<string, string>;
  joining?: Promise<void> | undefined;
}

interface JoinWaiter {
  nick: string;
  resolve: () => void;
  reject: (e: { condition: string; text?: string }) => void;
}

/** Content refusals: the sender's client shows these as an error about the message. */
const NOTICE_CONDITIONS = new Set(['policy-violation', 'forbidden', 'not-allowed', 'not-acceptable']);
const MISSING_CONDITIONS = new Set([
  'item-not-found',
  'service-unavailable',
  'remote-server-not-found',
  'gone',
]);

/** Maps xmpp.js errors (SASL, stream, stanza, socket) onto the failure vocabulary. */
export function classifyXmppError(err: unknown, phase: 'connect' | 'send'): FailureCode {
  if (err instanceof AdapterError) return err.code;
  const e = err as { name?: unknown; condition?: unknown } | null;
  if (e && typeof e === 'object') {
    if (e.name === 'SASLError')
      return e.condition === 'account-disabled' ? 'account_banned' : 'login_required';
    if (e.name === 'StreamError') {
      if (e.condition === 'not-authorized') return 'login_required';
      if (e.condition === 'policy-violation' || e.condition === 'resource-constraint') return 'rate_limited';
      return 'connection_lost';
    }
    if (e.name === 'TimeoutError') return phase === 'connect' ? 'connection_lost' : 'send_timeout';
  }
  const code = classifyFailure(err);
  return code === 'send_timeout' && phase === 'connect' ? 'connection_lost' : code;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const e = new Error(`${what} timed out after ${ms} ms`);
      e.name = 'TimeoutError';
      reject(e);
    }, ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export class XmppSession {
  private readonly me: string;
  private client: XmppClient | undefined;
  private online = false;
  private closed = false;
  private reconnecting = false;
  private onlineWaiters: (() => void)[] = [];
  private readonly rooms = new Map<string, Room>();
  private readonly joinWaiters = new Map<string, JoinWaiter>();
  private readonly errorWaiters = new Map<string, (e: { condition: string; text?: string }) => void>();
  private observer: ((m: ObservedMessage) => void) | undefined;
  private errorSink: ((e: Error) => void) | undefined;
  private readonly early: ObservedMessage[] = [];
  private keepalive: NodeJS.Timeout | undefined;
  /** Set when reconnecting gave up; sends fail with it. */
  private fatal: AdapterError | undefined;

  constructor(
    handle: string,
    private readonly password: string,
    private readonly settings: XmppSettings,
    private readonly log: Logger,
  ) {
    this.me = bareJid(handle);
    for (const g of settings.groups) {
      this.rooms.set(g.room, { jid: g.room, nick: settings.nick, joined: false, occupants: new Map() });
    }
  }

  get jid(): string {
    return this.me;
  }

  isOnline(): boolean {
    return this.online;
  }

  async connect(): Promise<void> {
    this.closed = false;
    this.fatal = undefined;
    await this.open();
  }

  observe(onMessage: (m: ObservedMessage) => void, onError: (e: Error) => void): void {
    this.observer = onMessage;
    this.errorSink = onError;
    for (const m of this.early.splice(0)) this.deliver(m);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.online = false;
    clearInterval(this.keepalive);
    const c = this.client;
    this.client = undefined;
    for (const w of this.onlineWaiters.splice(0)) w();
    if (c) {
      try {
        await withTimeout(c.stop(), 3_000, 'closing the XMPP stream');
      } catch (err) {
        this.log.debug({ err }, 'xmpp close was not clean');
      }
      c.removeAllListeners();
      c.on('error', () => {});
    }
    this.observer = undefined;
    this.errorSink = undefined;
  }

  /** Log in with a fresh client, send initial presence, join every configured room. */
  private async open(): Promise<void> {
    const s = this.settings;
    const node = this.me.slice(0, this.me.indexOf('@'));
    const c = createClient({
      service: `${s.tls === 'direct' ? 'xmpps' : 'xmpp'}://${s.host}:${s.port}`,
      domain: s.domain,
      username: node,
      password: this.password,
      resource: s.resource,
      timeoutMs: Math.min(s.connectTimeoutMs, 10_000),
    });
    let noTls = false;
    c.on('error', (err) => this.log.debug({ err }, 'xmpp client error'));
    c.on('status', (status) => {
      if (status === 'connect') disableNagle(c);
    });
    c.on('stanza', (el) => {
      if (this.client === c) this.onStanza(el);
    });
    // Refuse to authenticate without TLS when TLS is required (checked before SASL runs).
    (c as unknown as { on(e: 'nonza', l: (el: XmlElement) => void): void }).on('nonza', (el) => {
      if (s.tls !== 'starttls' || c.isSecure() || el.name !== 'stream:features') return;
      if (!el.getChild('starttls', NS_STARTTLS)) {
        noTls = true;
        c.stop().catch(() => {});
      }
    });
    try {
      await withTimeout(c.start(), s.connectTimeoutMs, `connecting to ${s.host}:${s.port}`);
      if (s.tls !== 'none' && !c.isSecure()) noTls = true;
      if (noTls)
        throw new AdapterError(
          'adapter_error',
          `${s.host}:${s.port} offered no TLS (settings.tls requires it)`,
        );
    } catch (err) {
      c.removeAllListeners();
      c.on('error', () => {});
      c.stop().catch(() => {});
      if (noTls) {
        throw new AdapterError(
          'adapter_error',
          `${s.host}:${s.port} offered no TLS (settings.tls requires it)`,
        );
      }
      const code = classifyXmppError(err, 'connect');
      throw new AdapterError(code, `xmpp login as ${this.me} failed: ${asError(err).message}`, {
        cause: err,
      });
    }
    disableNagle(c);
    this.client = c;
    c.on('disconnect', () => this.onDisconnect(c));
    for (const room of this.rooms.values()) {
      room.joined = false;
      room.occupants.clear();
    }
    try {
      await c.send(xml('presence'));
      await Promise.all([...this.rooms.values()].map((r) => this.join(c, r)));
    } catch (err) {
      this.client = undefined;
      c.removeAllListeners();
      c.on('error', () => {});
      c.stop().catch(() => {});
      if (err instanceof AdapterError) throw err;
      throw new AdapterError('connection_lost', `xmpp session setup failed: ${asError(err).message}`, {
        cause: err,
      });
    }
    this.online = true;
    for (const w of this.onlineWaiters.splice(0)) w();
    this.startKeepalive(c);
    this.log.info({ rooms: this.rooms.size, secure: c.isSecure() }, 'xmpp online');
  }

  /** Joins `room` (one join per room at a time). */
  private join(c: XmppClient, room: Room): Promise<void> {
    if (!room.joining) {
      room.joining = this.joinOnce(c, room).finally(() => {
        room.joining = undefined;
      });
    }
    return room.joining;
  }

  private async joinOnce(c: XmppClient, room: Room): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const nick = attempt === 0 ? this.settings.nick : `${this.settings.nick}-${randomUUID().slice(0, 6)}`;
      const joined = new Promise<void>((resolve, reject) => {
        this.joinWaiters.set(room.jid, { nick, resolve, reject });
      });
      await c.send(
        xml(
          'presence',
          { to: `${room.jid}/${nick}` },
          xml('x', { xmlns: NS_MUC }, xml('history', { maxstanzas: '0' })),
        ),
      );
      try {
        await withTimeout(joined, this.settings.joinTimeoutMs, `joining ${room.jid}`);
        room.nick = nick;
        room.joined = true;
        return;
      } catch (err) {
        const e = err as { condition?: string; text?: string; name?: string };
        if (e.condition === 'conflict') continue;
        const code: FailureCode =
          e.name === 'TimeoutError' || e.condition === 'connection-lost'
            ? 'connection_lost'
            : 'conversation_not_found';
        throw new AdapterError(
          code,
          `cannot join ${room.jid}: ${e.condition ?? asError(err).message}${e.text ? ` (${e.text})` : ''}`,
        );
      } finally {
        this.joinWaiters.delete(room.jid);
      }
    }
    throw new AdapterError('conversation_not_found', `cannot join ${room.jid}: nickname conflicts`);
  }

  private startKeepalive(c: XmppClient): void {
    clearInterval(this.keepalive);
    this.keepalive = setInterval(() => {
      if (this.client !== c || !this.online) return;
      c.iqCaller
        .request(
          xml('iq', { type: 'get', to: this.settings.domain }, xml('ping', { xmlns: NS_PING })),
          10_000,
        )
        .catch((err: unknown) => {
          if ((err as { name?: string }).name !== 'TimeoutError' || this.client !== c) return;
          this.log.warn('xmpp keepalive ping unanswered: dropping the connection');
          (c as unknown as { disconnect(): Promise<unknown> }).disconnect().catch(() => {});
        });
    }, this.settings.keepaliveMs);
    this.keepalive.unref();
  }

  private onDisconnect(c: XmppClient): void {
    if (this.client !== c) return;
    const wasOnline = this.online;
    this.online = false;
    this.client = undefined;
    clearInterval(this.keepalive);
    c.removeAllListeners();
    c.on('error', () => {});
    for (const reject of this.errorWaiters.values()) reject({ condition: 'connection-lost' });
    for (const w of this.joinWaiters.values()) w.reject({ condition: 'connection-lost' });
    // A drop while open() is still setting up fails that open(); its caller retries.
    if (this.closed || !wasOnline) return;
    this.log.warn({ jid: this.me }, 'xmpp connection lost; reconnecting');
    void this.reconnectLoop();
  }

  private async reconnectLoop(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    const { minMs, maxMs, giveUpMs } = this.settings.reconnect;
    const started = Date.now();
    let delay = minMs;
    try {
      for (let attempt = 1; !this.closed; attempt++) {
        await sleep(delay * (0.75 + Math.random() * 0.5));
        if (this.closed) return;
        try {
          await this.open();
          this.log.info({ attempt, after_ms: Date.now() - started }, 'xmpp reconnected');
          return;
        } catch (err) {
          const code = classifyXmppError(err, 'connect');
          this.log.warn({ attempt, code, err: asError(err).message }, 'xmpp reconnect failed');
          this.online = false;
          const c = this.client;
          if (c) {
            this.client = undefined;
            c.removeAllListeners();
            c.on('error', () => {});
            c.stop().catch(() => {});
          }
          if (code === 'login_required' || code === 'account_banned' || Date.now() - started > giveUpMs) {
            this.fatal = new AdapterError(
              code === 'login_required' || code === 'account_banned' ? code : 'connection_lost',
              `xmpp reconnect as ${this.me} gave up after ${attempt} attempts: ${asError(err).message}`,
              { cause: err },
            );
            for (const w of this.onlineWaiters.splice(0)) w();
            this.errorSink?.(this.fatal);
            return;
          }
          delay = Math.min(delay * 2, maxMs);
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }

  /** The live client, waiting for a reconnect up to `deadline`. */
  private async liveClient(deadline: number): Promise<XmppClient> {
    for (;;) {
      if (this.fatal) throw this.fatal;
      if (this.closed) throw new AdapterError('login_required', 'xmpp adapter is closed: call connect()');
      if (this.online && this.client) return this.client;
      const left = deadline - Date.now();
      if (left <= 0) throw new AdapterError('connection_lost', `xmpp: not connected as ${this.me}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.onlineWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async send(kind: 'direct' | 'group', to: string, text: string): Promise<SendResult> {
    const deadline = Date.now() + this.settings.sendTimeoutMs;
    const c = await this.liveClient(deadline);
    if (kind === 'group') {
      const room = this.rooms.get(to);
      if (!room)
        throw new AdapterError('conversation_not_found', `${this.me} is not configured for room ${to}`);
      if (!room.joined) throw new AdapterError('conversation_not_found', `${this.me} is not in room ${to}`);
    }
    const id = `sd-${randomUUID()}`;
    let bounced: { condition: string; text?: string } | undefined;
    this.errorWaiters.set(id, (e) => {
      bounced ??= e;
    });
    try {
      try {
        await c.send(
          xml('message', { to, type: kind === 'group' ? 'groupchat' : 'chat', id }, xml('body', {}, text)),
        );
      } catch (err) {
        throw new AdapterError('connection_lost', `xmpp send to ${to} failed: ${asError(err).message}`, {
          cause: err,
        });
      }
      const at = new Date();
      await this.barrier(c, domainOf(to), deadline);
      if (this.settings.bounceWaitMs > 0 && !bounced) await sleep(this.settings.bounceWaitMs);
      if (!bounced) return { status: 'sent', at, platformMessageId: id };
      return this.bounceResult(bounced, kind, to, at);
    } finally {
      this.errorWaiters.delete(id);
    }
  }

  private bounceResult(
    e: { condition: string; text?: string },
    kind: 'direct' | 'group',
    to: string,
    at: Date,
  ): SendResult {
    if (e.condition === 'connection-lost') {
      throw new AdapterError('send_timeout', `xmpp connection dropped right after sending to ${to}`);
    }
    if (kind === 'group' && e.condition === 'not-acceptable') {
      // XEP-0045: "You are not currently connected to this chat". Rejoin in the background.
      const room = this.rooms.get(to);
      const c = this.client;
      if (room && c) {
        room.joined = false;
        this.join(c, room).catch((err: unknown) =>
          this.log.error({ err: asError(err).message }, 'rejoin failed'),
        );
      }
      throw new AdapterError(
        'conversation_not_found',
        `${this.me} is not an occupant of ${to}: ${e.text ?? e.condition}`,
      );
    }
    if (NOTICE_CONDITIONS.has(e.condition)) {
      return { status: 'rejected', at, failure: 'notice_shown', notice: e.text ?? e.condition };
    }
    if (MISSING_CONDITIONS.has(e.condition)) {
      throw new AdapterError(
        'conversation_not_found',
        `${to}: ${e.condition}${e.text ? ` (${e.text})` : ''}`,
      );
    }
    if (e.condition === 'resource-constraint')
      throw new AdapterError('rate_limited', `${to}: ${e.text ?? e.condition}`);
    throw new AdapterError('adapter_error', `${to} answered ${e.condition}${e.text ? ` (${e.text})` : ''}`);
  }

  /** Waits until the service handling `domain` answered a ping sent after the message. */
  private async barrier(c: XmppClient, domain: string, deadline: number): Promise<void> {
    const left = Math.max(1, deadline - Date.now());
    try {
      await c.iqCaller.request(xml('iq', { type: 'get', to: domain }, xml('ping', { xmlns: NS_PING })), left);
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'StanzaError') return; // an error answer is an answer: ordering holds
      if (name === 'TimeoutError') {
        throw new AdapterError('send_timeout', `no answer from ${domain} within the send timeout`, {
          cause: err,
        });
      }
      throw new AdapterError('send_timeout', `connection lost before ${domain} confirmed the send`, {
        cause: err,
      });
    }
  }

  private onStanza(el: XmlElement): void {
    if (el.name === 'presence') {
      this.onPresence(el);
      return;
    }
    if (el.name !== 'message') return;
    const type = el.attrs.type ?? 'normal';
    const from = el.attrs.from ?? '';
    if (type === 'error') {
      const id = el.attrs.id;
      const waiter = id ? this.errorWaiters.get(id) : undefined;
      const e = stanzaError(el) ?? { condition: 'undefined-condition' };
      if (waiter) waiter(e);
      else this.log.debug({ from, id, condition: e.condition }, 'xmpp error for an unknown message');
      return;
    }
    const body = el.getChildText('body');
    if (body === null) return;
    if (el.getChild('sent', NS_CARBONS) || el.getChild('received', NS_CARBONS)) return;
    const fromBare = bareJid(from);
    const msgId = el.getChild('stanza-id', NS_STANZA_ID)?.attrs.id ?? el.attrs.id;
    const base = { text: body, at: new Date(), ...(msgId ? { platformMessageId: msgId } : {}) };

    if (type === 'groupchat') {
      const room = this.rooms.get(fromBare);
      if (!room) return;
      const nick = from.slice(fromBare.length + 1);
      if (!nick || nick === room.nick) return; // room subject/status, or our own echo
      if (el.getChild('delay', NS_DELAY)) return; // history replay: not a live delivery
      this.deliver({ conversation: groupRef(room.jid), from: room.occupants.get(nick) ?? from, ...base });
      return;
    }
    if (type !== 'chat' && type !== 'normal') return;
    if (!fromBare || fromBare === this.me || this.rooms.has(fromBare)) return; // self, or a MUC private message
    this.deliver({ conversation: directRef(this.me, fromBare), from: fromBare, ...base });
  }

  private onPresence(el: XmlElement): void {
    const from = el.attrs.from ?? '';
    const roomJid = bareJid(from);
    const room = this.rooms.get(roomJid);
    if (!room) return;
    const nick = from.slice(roomJid.length + 1);
    const waiter = this.joinWaiters.get(roomJid);
    if (el.attrs.type === 'error') {
      if (waiter) waiter.reject(stanzaError(el) ?? { condition: 'undefined-condition' });
      return;
    }
    const x = el.getChild('x', NS_MUC_USER);
    const isSelf =
      nick === (waiter?.nick ?? room.nick) &&
      (x?.getChildren('status').some((s) => s.attrs.code === '110') ?? true);
    if (el.attrs.type === 'unavailable') {
      room.occupants.delete(nick);
      if (isSelf && !waiter && room.joined && !this.closed) {
        room.joined = false;
        this.log.warn({ room: room.jid }, 'xmpp: left or removed from room; rejoining');
        const c = this.client;
        if (c)
          this.join(c, room).catch((err: unknown) =>
            this.log.error({ err: asError(err).message }, 'rejoin failed'),
          );
      }
      return;
    }
    const realJid = x?.getChild('item')?.attrs.jid;
    if (realJid) room.occupants.set(nick, bareJid(realJid));
    if (isSelf && waiter) waiter.resolve();
  }

  private deliver(m: ObservedMessage): void {
    if (!this.observer) {
      if (this.early.length < 10_000) this.early.push(m);
      return;
    }
    try {
      this.observer(m);
    } catch (err) {
      this.errorSink?.(asError(err));
    }
  }
}
