/**
 * Forward proxies a test puts between a probe and the collector, each recording what it saw:
 *
 * - `startConnectProxy`: an HTTP proxy that only tunnels (CONNECT host:port), as corporate
 *   proxies and squid do for TLS; it can demand Basic credentials (407 otherwise).
 * - `startSocks5Server`: a SOCKS5 server (RFC 1928, CONNECT only) with "no authentication" or
 *   user name and password (RFC 1929); it records the address type the client sent, so a test
 *   can tell a name handed to the proxy from an address resolved by the client.
 *
 * `close()` stops listening and destroys every open socket (tunnels drop at once), so a test
 * can take a proxy down while a probe holds connections through it.
 */
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';

export interface Tunnel {
  /** host:port the client asked for. */
  target: string;
  /** SOCKS: 'domain', 'ipv4' or 'ipv6'; HTTP: the Proxy-Authorization header, if any. */
  detail?: string;
}

export interface ForwardProxy {
  /** host:port the proxy listens on. */
  address: string;
  port: number;
  tunnels: Tunnel[];
  /** Connections refused (bad credentials, not CONNECT). */
  refused: number;
  close(): Promise<void>;
}

function track(server: Server | ReturnType<typeof createHttpServer>) {
  const sockets = new Set<Socket>();
  const add = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  server.on('connection', add);
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  return { add, close };
}

function pipeBoth(a: Socket, b: Socket): void {
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
  a.pipe(b);
  b.pipe(a);
}

async function listen(server: Server | ReturnType<typeof createHttpServer>, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/** An HTTP proxy that serves CONNECT only; with `auth` ("user:password") it requires Basic credentials. */
export async function startConnectProxy(opts: { auth?: string; port?: number } = {}): Promise<ForwardProxy> {
  const server = createHttpServer((_req, res) => {
    proxy.refused += 1;
    res.writeHead(405, { 'content-type': 'text/plain' }).end('CONNECT only\n');
  });
  const sockets = track(server);
  const expected = opts.auth ? `Basic ${Buffer.from(opts.auth).toString('base64')}` : undefined;
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    sockets.add(client);
    const header = req.headers['proxy-authorization'];
    proxy.tunnels.push({ target: req.url ?? '', ...(header ? { detail: header } : {}) });
    if (expected && header !== expected) {
      proxy.refused += 1;
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n');
      return;
    }
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(req.url ?? '');
    if (!m) {
      proxy.refused += 1;
      client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const upstream = connect({ host: m[1]!, port: Number(m[2]) });
    sockets.add(upstream);
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      pipeBoth(client, upstream);
    });
    upstream.once('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
  });
  const port = await listen(server, opts.port);
  const proxy: ForwardProxy = {
    address: `127.0.0.1:${port}`,
    port,
    tunnels: [],
    refused: 0,
    close: sockets.close,
  };
  return proxy;
}

/**
 * A SOCKS5 server (RFC 1928: CONNECT; methods 0x00 "no authentication" or, with `auth`
 * ("user:password"), only 0x02 user name/password per RFC 1929).
 */
export async function startSocks5Server(opts: { auth?: string; port?: number } = {}): Promise<ForwardProxy> {
  const server = createServer((client) => {
    sockets.add(client);
    void handshake(client).catch(() => client.destroy());
  });
  const sockets = track(server);

  interface Reader {
    buf: Buffer;
    ended: boolean;
    wake?: () => void;
  }
  /** Exactly n bytes of the handshake (a few small messages). */
  const read = async (st: Reader, n: number): Promise<Buffer> => {
    while (st.buf.length < n) {
      if (st.ended) throw new Error('client went away during the handshake');
      await new Promise<void>((r) => {
        st.wake = r;
      });
    }
    const out = st.buf.subarray(0, n);
    st.buf = st.buf.subarray(n);
    return out;
  };

  async function handshake(client: Socket): Promise<void> {
    const st: Reader = { buf: Buffer.alloc(0), ended: false };
    const onData = (d: Buffer) => {
      st.buf = Buffer.concat([st.buf, d]);
      st.wake?.();
    };
    client.on('data', onData);
    client.on('close', () => {
      st.ended = true;
      st.wake?.();
    });

    const [ver, nMethods] = await read(st, 2);
    if (ver !== 5) throw new Error('not SOCKS5');
    const methods = [...(await read(st, nMethods!))];
    const want = opts.auth ? 0x02 : 0x00;
    if (!methods.includes(want)) {
      proxy.refused += 1;
      client.end(Buffer.from([5, 0xff]));
      return;
    }
    client.write(Buffer.from([5, want]));
    if (opts.auth) {
      const [, uLen] = await read(st, 2);
      const user = (await read(st, uLen!)).toString();
      const [pLen] = await read(st, 1);
      const password = (await read(st, pLen!)).toString();
      if (`${user}:${password}` !== opts.auth) {
        proxy.refused += 1;
        client.end(Buffer.from([1, 1]));
        return;
      }
      client.write(Buffer.from([1, 0]));
    }
    const [, cmd, , atyp] = await read(st, 4);
    let host: string;
    let kind: string;
    if (atyp === 1) {
      host = [...(await read(st, 4))].join('.');
      kind = 'ipv4';
    } else if (atyp === 3) {
      const [len] = await read(st, 1);
      host = (await read(st, len!)).toString();
      kind = 'domain';
    } else if (atyp === 4) {
      const b = await read(st, 16);
      host = [...Array(8).keys()].map((i) => b.readUInt16BE(i * 2).toString(16)).join(':');
      kind = 'ipv6';
    } else throw new Error(`address type ${atyp}`);
    const port = (await read(st, 2)).readUInt16BE(0);
    proxy.tunnels.push({ target: `${host}:${port}`, detail: kind });
    const reply = (code: number) => Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
    if (cmd !== 1) {
      client.end(reply(7)); // command not supported
      return;
    }
    const upstream = connect({ host, port });
    sockets.add(upstream);
    upstream.once('error', () => client.end(reply(5))); // connection refused
    upstream.once('connect', () => {
      client.off('data', onData);
      client.write(reply(0));
      if (st.buf.length > 0) upstream.write(st.buf);
      pipeBoth(client, upstream);
    });
  }

  const port = await listen(server, opts.port);
  const proxy: ForwardProxy = {
    address: `127.0.0.1:${port}`,
    port,
    tunnels: [],
    refused: 0,
    close: sockets.close,
  };
  return proxy;
}
