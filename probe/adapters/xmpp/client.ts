/**
 * The one place that touches `@xmpp/client` (xmpp.js 0.14), which ships no types:
 * a small typed surface for what the adapter uses. Everything else in this folder
 * sees only these interfaces.
 */
import { client, xml as rawXml } from '@xmpp/client';

/** An XML element as xmpp.js (ltx) parses and builds it. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string | undefined>;
  children: (XmlElement | string)[];
  is(name: string, xmlns?: string): boolean;
  getChild(name: string, xmlns?: string): XmlElement | undefined;
  getChildren(name: string, xmlns?: string): XmlElement[];
  getChildText(name: string, xmlns?: string): string | null;
  getNS(): string | undefined;
  text(): string;
  toString(): string;
}

type XmlChild = XmlElement | string | undefined | null | false;
export const xml = rawXml as unknown as (
  name: string,
  attrs?: Record<string, string | undefined>,
  ...children: (XmlChild | XmlChild[])[]
) => XmlElement;

export type XmppStatus =
  | 'offline'
  | 'connecting'
  | 'connect'
  | 'opening'
  | 'open'
  | 'online'
  | 'closing'
  | 'close'
  | 'disconnecting'
  | 'disconnect';

/** A TCP or TLS socket as far as Nagle is concerned (xmpp.js wraps TLS sockets once). */
interface MaybeSocket {
  setNoDelay?: (noDelay?: boolean) => unknown;
  socket?: MaybeSocket | null;
}

export interface XmppClient {
  readonly status: XmppStatus;
  readonly jid: { toString(): string } | null;
  readonly socket: MaybeSocket | null;
  isSecure(): boolean;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  send(element: XmlElement): Promise<void>;
  on(event: 'stanza', listener: (el: XmlElement) => void): this;
  on(event: 'status', listener: (status: XmppStatus) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'disconnect' | 'offline' | 'online', listener: () => void): this;
  removeAllListeners(): this;
  reconnect: { stop(): void };
  iqCaller: { request(stanza: XmlElement, timeoutMs?: number): Promise<XmlElement> };
}

export interface XmppClientOptions {
  /** `xmpp://host:port` (plain, STARTTLS when offered) or `xmpps://host:port` (direct TLS). */
  service: string;
  domain: string;
  username: string;
  password: string;
  resource: string;
  /** Timeout for opening and closing the stream, ms. */
  timeoutMs: number;
}

/**
 * A client with xmpp.js' own reconnect turned off: the adapter reconnects itself (with
 * backoff, a fresh client per attempt, rooms rejoined) so that state is never half-reset.
 */
export function createClient(o: XmppClientOptions): XmppClient {
  // xmpp.js has no type declarations; its `client()` result is described by XmppClient above.
  const c = client({
    service: o.service,
    domain: o.domain,
    username: o.username,
    password: o.password,
    resource: o.resource,
    timeout: o.timeoutMs,
  }) as unknown as XmppClient;
  c.reconnect.stop();
  return c;
}

/** Turns Nagle's algorithm off on the client's socket (and a TLS socket's inner one). */
export function disableNagle(c: XmppClient): void {
  let s: MaybeSocket | null | undefined = c.socket;
  for (let depth = 0; s && depth < 3; depth++) {
    if (typeof s.setNoDelay === 'function') s.setNoDelay(true);
    s = s.socket;
  }
}

/** The stanza error of an `type="error"` stanza: condition and text. */
export function stanzaError(el: XmlElement): { condition: string; text?: string } | undefined {
  const err = el.getChild('error');
  if (!err) return undefined;
  const NS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
  const condition = err.children.find(
    (c): c is XmlElement => typeof c !== 'string' && c.getNS() === NS && c.name !== 'text',
  );
  const text = err.getChildText('text', NS) ?? undefined;
  return { condition: condition?.name ?? 'undefined-condition', ...(text ? { text } : {}) };
}
