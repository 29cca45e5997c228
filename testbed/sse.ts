/**
 * The server-sent-event stream of one account: `event: message` per delivery, with the
 * account's timeline sequence as the event id. On connect, everything after
 * `Last-Event-ID` is replayed before live events, so a reconnect loses nothing.
 * A `: ping` comment keeps idle connections (and proxies) alive.
 */
import type { ServerResponse } from 'node:http';
import type { Store, TimelineEntry } from './store.ts';

export class SseHub {
  private readonly open = new Set<() => void>();

  constructor(
    private readonly store: Store,
    private readonly pingIntervalMs: number,
  ) {}

  /** Take over `res` and stream `handle`'s deliveries after `lastEventId` (absent: only new ones). */
  stream(res: ServerResponse, handle: string, lastEventId: number | undefined): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 1000\n\n');
    const send = (entry: TimelineEntry): void => {
      if (entry.kind !== 'delivered') return;
      res.write(`id: ${entry.seq}\nevent: message\ndata: ${JSON.stringify(entry.message)}\n\n`);
    };
    // Replay and subscribe in the same tick: nothing can be appended in between.
    if (lastEventId !== undefined) {
      for (const entry of this.store.timeline(handle)) if (entry.seq > lastEventId) send(entry);
    }
    const unsubscribe = this.store.subscribe(handle, send);
    const ping = setInterval(() => res.write(': ping\n\n'), this.pingIntervalMs);
    ping.unref();
    const end = (): void => {
      clearInterval(ping);
      unsubscribe();
      this.open.delete(end);
      if (!res.writableEnded) res.end();
    };
    this.open.add(end);
    res.on('close', end);
  }

  /** End every open stream (the testbed is closing). */
  closeAll(): void {
    for (const end of [...this.open]) end();
  }
}

/**
 * The resume point from `Last-Event-ID` (header) or `lastEventId` (query): undefined when
 * absent (stream only new deliveries); 0 when malformed (replay everything: a client
 * that asked to resume must not lose anything).
 */
export function parseLastEventId(value: unknown): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text === '') return undefined;
  if (typeof text !== 'string' || !/^\d+$/.test(text.trim())) return 0;
  return Number(text.trim());
}
