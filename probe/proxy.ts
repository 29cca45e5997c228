/**
 * Proxies for the probe ↔ collector traffic, and only for it.
 *
 * The rule, decided once when the config is read (`proxyRouteFor`), per collector address:
 *   1. the config's `proxy:` field, when given, wins: a proxy URL, or `direct` (ignore the
 *      environment);
 *   2. otherwise the standard variables: `https_proxy`/`HTTPS_PROXY` for an https://
 *      collector, `http_proxy`/`HTTP_PROXY` for an http:// one, then `all_proxy`/`ALL_PROXY`
 *      (lower case first, an empty value counts as unset); `no_proxy`/`NO_PROXY` names hosts
 *      that are reached directly (comma or space separated; `*` for all; `host` or `.host`
 *      or `*.host` also covers its subdomains; `host:port` only that port);
 *   3. otherwise directly.
 * Proxy schemes: http, https (CONNECT tunnel, through undici's ProxyAgent), socks5 and socks5h
 * (through fetch-socks). Both SOCKS schemes hand the collector's *name* to the proxy, which
 * resolves it: a lookup on the probe's own network would tell that network which collector
 * the probe talks to, which is what a proxy is usually there to hide.
 *
 * The chat platforms' traffic (the adapters) never goes through this: a proxy elsewhere would
 * move the measurement's vantage point. Credentials in a proxy URL never leave this module
 * except toward the proxy: everything shown (logs, errors, status) is `redactProxyUrl`'s form,
 * and errors from the proxy libraries are copied into plain ones (a SOCKS error carries the
 * whole proxy config, password included, as an enumerable property a logger would print).
 *
 * undici and fetch-socks are imported on the first request that needs them, so a probe without
 * a proxy loads neither (the probe's memory footprint, bench/footprint.ts).
 */

export type ProxySource =
  | 'config'
  | 'https_proxy'
  | 'HTTPS_PROXY'
  | 'http_proxy'
  | 'HTTP_PROXY'
  | 'all_proxy'
  | 'ALL_PROXY';

/** How one collector address is reached. */
export interface ProxyRoute {
  /** The collector address (as in the config). */
  collectorUrl: string;
  /** The proxy, with credentials if it has any; absent: directly. */
  proxy?: string;
  /** Where the proxy came from, or why there is none. */
  source: ProxySource | 'no_proxy' | 'config_direct' | 'none';
}

const SCHEMES = new Set(['http:', 'https:', 'socks5:', 'socks5h:']);
const DEFAULT_PORT: Record<string, number> = {
  'http:': 80,
  'https:': 443,
  'socks5:': 1080,
  'socks5h:': 1080,
};

/** A proxy URL checked: the URL, or what is wrong with it (never quoting the credentials). */
export function parseProxyUrl(text: string): URL | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'not a URL (expected e.g. http://proxy.example:3128 or socks5h://127.0.0.1:1080)';
  }
  if (!SCHEMES.has(url.protocol))
    return `unsupported proxy scheme "${url.protocol.replace(/:$/, '')}" (http, https, socks5 or socks5h)`;
  if (!url.hostname) return 'the proxy URL has no host';
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash)
    return 'a proxy URL is scheme://[user:password@]host[:port], with no path or query';
  if (url.password && !url.username) return 'the proxy URL has a password but no user name';
  return url;
}

/** The URL as the probe keeps it: scheme://[user:password@]host[:port], no trailing slash. */
export function proxyUrlText(url: URL): string {
  return url.href.replace(/\/$/, '');
}

/** scheme://host:port, with `***@` in place of any credentials. Safe to show. */
export function redactProxyUrl(proxy: string | URL): string {
  let url: URL;
  try {
    url = typeof proxy === 'string' ? new URL(proxy) : proxy;
  } catch {
    return '(unparsable proxy URL)';
  }
  const port = url.port || String(DEFAULT_PORT[url.protocol] ?? '');
  const auth = url.username || url.password ? '***@' : '';
  return `${url.protocol}//${auth}${url.hostname}${port ? `:${port}` : ''}`;
}

/** What a route shows in logs and `probe status`: the redacted proxy and its source, or "direct". */
export function describeRoute(route: Pick<ProxyRoute, 'proxy' | 'source'>): string {
  if (!route.proxy) {
    if (route.source === 'no_proxy') return 'direct (NO_PROXY)';
    if (route.source === 'config_direct') return 'direct (proxy: direct)';
    return 'direct';
  }
  return `${redactProxyUrl(route.proxy)} (from ${route.source === 'config' ? 'the config' : route.source})`;
}

const envValue = (env: NodeJS.ProcessEnv, lower: ProxySource, upper: ProxySource) => {
  const l = env[lower];
  if (l !== undefined && l !== '') return { value: l, source: lower };
  const u = env[upper];
  if (u !== undefined && u !== '') return { value: u, source: upper };
  return undefined;
};

/** True when `no_proxy`/`NO_PROXY` says to reach `target` directly. */
export function bypassesProxy(target: URL, env: NodeJS.ProcessEnv): boolean {
  const raw = env.no_proxy ?? env.NO_PROXY ?? '';
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = Number(target.port || DEFAULT_PORT[target.protocol] || 0);
  for (const item of raw.split(/[\s,]+/)) {
    if (!item) continue;
    if (item === '*') return true;
    // host, .host, *.host, host:port, [v6]:port, a bare IPv6 address
    let name = item;
    let p: number | undefined;
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(item);
    const withPort = /^([^:]+):(\d+)$/.exec(item);
    if (bracketed) {
      name = bracketed[1]!;
      p = bracketed[2] ? Number(bracketed[2]) : undefined;
    } else if (withPort) {
      name = withPort[1]!;
      p = Number(withPort[2]);
    }
    name = name.replace(/^\*?\./, '').toLowerCase();
    if (!name || (p !== undefined && p !== port)) continue;
    if (host === name || host.endsWith(`.${name}`)) return true;
  }
  return false;
}

export class ProxyConfigError extends Error {
  constructor(
    /** The config field or environment variable. */
    readonly where: string,
    message: string,
  ) {
    super(message);
    this.name = 'ProxyConfigError';
  }
}

/**
 * How the probe reaches `collectorUrl`. `configured` is the config's `proxy:` field
 * (a URL or `direct`), already checked by the config; a bad URL in the environment throws
 * a ProxyConfigError naming the variable.
 */
export function proxyRouteFor(
  collectorUrl: string,
  configured: string | undefined,
  env: NodeJS.ProcessEnv,
): ProxyRoute {
  if (configured === 'direct') return { collectorUrl, source: 'config_direct' };
  if (configured !== undefined) return { collectorUrl, proxy: configured, source: 'config' };
  const target = new URL(collectorUrl);
  const found =
    (target.protocol === 'https:'
      ? envValue(env, 'https_proxy', 'HTTPS_PROXY')
      : envValue(env, 'http_proxy', 'HTTP_PROXY')) ?? envValue(env, 'all_proxy', 'ALL_PROXY');
  if (!found) return { collectorUrl, source: 'none' };
  const parsed = parseProxyUrl(found.value);
  if (typeof parsed === 'string') throw new ProxyConfigError(found.source, parsed);
  if (bypassesProxy(target, env)) return { collectorUrl, source: 'no_proxy' };
  return { collectorUrl, proxy: proxyUrlText(parsed), source: found.source };
}

/** A fetch for the collector client that sends each request the way its route says. */
export interface CollectorFetch {
  fetch: typeof fetch;
  /** Closes the proxies' connections (the probe's stop). */
  close(): Promise<void>;
}

type Dispatcher = import('undici').Dispatcher;
type UndiciInit = NonNullable<Parameters<typeof import('undici').fetch>[1]>;

/**
 * The collector client's fetch for these routes, or undefined when none uses a proxy (then
 * the client keeps Node's own fetch and nothing here is loaded).
 */
export function collectorFetch(routes: ProxyRoute[]): CollectorFetch | undefined {
  const byOrigin = new Map<string, string>();
  for (const r of routes) if (r.proxy) byOrigin.set(new URL(r.collectorUrl).origin, r.proxy);
  if (byOrigin.size === 0) return undefined;

  const dispatchers = new Map<string, Promise<Dispatcher>>();
  let undici: Promise<typeof import('undici')> | undefined;
  const loadUndici = () => {
    undici ??= import('undici');
    return undici;
  };
  const dispatcherFor = (proxy: string): Promise<Dispatcher> => {
    let d = dispatchers.get(proxy);
    if (!d) {
      d = makeDispatcher(proxy, loadUndici);
      dispatchers.set(proxy, d);
    }
    return d;
  };

  const proxiedFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    // The collector client passes a URL and an init; a Request's body would not cross over to
    // undici's fetch, so one is refused rather than sent without it.
    if (input instanceof Request) throw new TypeError('the collector fetch takes a URL, not a Request');
    const url = new URL(input);
    const proxy = byOrigin.get(url.origin);
    if (!proxy) return fetch(url, init);
    try {
      const [{ fetch: undiciFetch }, dispatcher] = await Promise.all([loadUndici(), dispatcherFor(proxy)]);
      // undici's own fetch: Node 20's built-in fetch is an older undici whose dispatcher
      // interface differs from undici 7's agents.
      const res = await undiciFetch(url, { ...(init as UndiciInit), dispatcher });
      return res as unknown as Response;
    } catch (err) {
      throw proxyFailure(err, proxy);
    }
  };

  return {
    fetch: proxiedFetch as typeof fetch,
    close: async () => {
      const all = [...dispatchers.values()];
      dispatchers.clear();
      // destroy, not close: close() waits for requests in flight, and a CONNECT a proxy never
      // answers stays in flight after its request timed out.
      await Promise.all(
        all.map(async (d) => (await d.catch(() => undefined))?.destroy().catch(() => undefined)),
      );
    },
  };
}

async function makeDispatcher(
  proxy: string,
  loadUndici: () => Promise<typeof import('undici')>,
): Promise<Dispatcher> {
  const url = new URL(proxy);
  if (url.protocol === 'socks5:' || url.protocol === 'socks5h:') {
    const { socksDispatcher } = await import('fetch-socks');
    return socksDispatcher({
      type: 5,
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 1080),
      ...(url.username ? { userId: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    });
  }
  const { ProxyAgent } = await loadUndici();
  // ProxyAgent turns user:password in the URL into a Basic Proxy-Authorization header, and
  // tunnels (CONNECT) to http:// collectors as well as https:// ones.
  return new ProxyAgent({ uri: proxy });
}

/**
 * A failed request through a proxy, as a plain error that names the proxy (redacted) and keeps
 * the cause's code and message (credentials blotted out) but none of the libraries' objects.
 * An abort or timeout passes through unchanged: the client reports those itself.
 */
function proxyFailure(err: unknown, proxy: string): unknown {
  const name = (err as { name?: string } | undefined)?.name;
  if (name === 'AbortError' || name === 'TimeoutError') return err;
  const url = new URL(proxy);
  const secrets = [url.username, url.password]
    .filter((s) => s.length >= 3) // shorter ones would blot out letters of ordinary words
    .flatMap((s) => [s, decodeURIComponent(s)]);
  const clean = (text: string) => secrets.reduce((t, s) => t.split(s).join('***'), text);
  const e = err as { message?: string; cause?: unknown };
  // The deepest cause says what happened: fetch's "fetch failed" wraps undici's "Request was
  // cancelled." which wraps "Proxy response (407) !== 200 when HTTP Tunneling"; its message
  // rather than its code ("connect ECONNREFUSED 10.0.0.5:3128" holds the code).
  let inner: { code?: unknown; message?: unknown; cause?: unknown } | undefined = e;
  for (let depth = 0; depth < 8 && inner?.cause && typeof inner.cause === 'object'; depth++)
    inner = inner.cause as typeof inner;
  const message = typeof inner?.message === 'string' && inner.message ? inner.message : undefined;
  const code = typeof inner?.code === 'string' ? inner.code : undefined;
  const cause = new Error(clean(message ?? code ?? 'unknown error'));
  return new TypeError(`${clean(e.message ?? 'fetch failed')} through the proxy ${redactProxyUrl(proxy)}`, {
    cause,
  });
}
