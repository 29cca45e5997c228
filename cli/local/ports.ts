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
