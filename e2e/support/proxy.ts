/**
 * A TCP proxy in front of the collector (or a database), so a test can make it unreachable
 * for a while and reachable again (`restore()`), without touching the server itself:
 * - `cut()`: open connections are destroyed, new ones reset at once (a refused port);
 * - `blackhole()`: nothing goes through any more and nothing is answered, as when a network
 *   drops packets: open connections stay open but silent, new ones are accepted and never
 *   served. `restore()` then ends the silent connections (they would have timed out) and
 *   serves new ones again.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface CuttableProxy {
  url: string;
  port: number;
  cut(): void;
  blackhole(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startProxy(target: string): Promise<CuttableProxy> {
  const { hostname, port } = new URL(target);
  let mode: 'open' | 'cut' | 'blackhole' = 'open';
  const sockets = new Set<Socket>();
  const silent = new Set<Socket>();
  const hold = (s: Socket) => {
    silent.add(s);
    s.unpipe();
    s.pause();
    s.on('close', () => silent.delete(s));
  };
  const server: Server = createServer((client) => {
    client.on('error', () => client.destroy());
    if (mode === 'cut') {
      client.resetAndDestroy();
      return;
    }
    if (mode === 'blackhole') {
      hold(client);
      return;
    }
    const upstream = createConnection({ host: hostname, port: Number(port) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const listenPort = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${listenPort}`,
    port: listenPort,
    cut() {
      mode = 'cut';
      for (const s of sockets) s.destroy();
    },
    blackhole() {
      mode = 'blackhole';
      for (const s of sockets) hold(s);
      sockets.clear();
    },
    restore() {
      mode = 'open';
      for (const s of silent) s.destroy();
    },
    close() {
      for (const s of [...sockets, ...silent]) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
