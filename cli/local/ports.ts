/** Is a TCP port free to listen on, and the first free one from a starting point. */
import { createServer } from 'node:net';

export function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** The first free port in [from, from + tries); undefined when all are taken. */
export async function firstFreePort(host: string, from: number, tries = 20): Promise<number | undefined> {
  for (let p = from; p < Math.min(65_536, from + tries); p++) if (await portIsFree(host, p)) return p;
  return undefined;
}

/** A port the system says is free now (listen on 0, read it, close). */
export function anyFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
