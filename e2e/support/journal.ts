/** Reads a probe's outbox journal (probe/journal.ts format) to see what it holds. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeRecord } from '../../probe/journal.ts';

export interface OutboxView {
  /** Event ids written to the outbox. */
  events: Map<string, { type: string; canary_id?: string; nonce?: string; account: string }>;
  /** Event ids the collector acknowledged. */
  acked: Set<string>;
  /** Canary ids handed out to this probe. */
  canaries: Set<string>;
}

export function readOutbox(probeDir: string): OutboxView {
  const file = join(probeDir, 'outbox', 'journal.log');
  const view: OutboxView = { events: new Map(), acked: new Set(), canaries: new Set() };
  if (!existsSync(file)) return view;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const r = decodeRecord(line);
    if (!r) continue;
    if (r.k === 'ev') {
      const ev = r.ev as {
        event_id: string;
        type: string;
        canary_id?: string;
        nonce?: string;
        account: string;
      };
      view.events.set(ev.event_id, ev);
    } else if (r.k === 'ack') {
      for (const id of r.ids as string[]) view.acked.add(id);
    } else if (r.k === 'canary') {
      view.canaries.add((r.a as { canary_id: string }).canary_id);
    }
  }
  return view;
}

/** Events in the outbox not yet acknowledged. */
export function unacked(view: OutboxView): string[] {
  return [...view.events.keys()].filter((id) => !view.acked.has(id));
}

/** Event ids refused by the collector, from `outbox/dead-letter.ndjson` (not stored, by design). */
export function deadLetters(probeDir: string): Set<string> {
  const file = join(probeDir, 'outbox', 'dead-letter.ndjson');
  const ids = new Set<string>();
  if (!existsSync(file)) return ids;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    try {
      const id = (JSON.parse(line) as { event?: { event_id?: unknown } }).event?.event_id;
      if (typeof id === 'string') ids.add(id);
    } catch {
      // a torn last line
    }
  }
  return ids;
}

/**
 * Everything probes' journals ever showed, read again and again: the journal is compacted
 * (acknowledged events dropped) when a probe starts and when acknowledgements pile up, so
 * one late read would miss events. `read()` merges the folders' current contents into the
 * union; `start()` does it on a timer until `stop()`.
 */
export class OutboxWatch {
  readonly seen = new Map<string, OutboxView>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly dirs: readonly string[]) {
    for (const d of dirs) this.seen.set(d, { events: new Map(), acked: new Set(), canaries: new Set() });
  }

  read(): this {
    for (const d of this.dirs) {
      const now = readOutbox(d);
      const all = this.seen.get(d)!;
      for (const [id, ev] of now.events) all.events.set(id, ev);
      for (const id of now.acked) all.acked.add(id);
      for (const id of now.canaries) all.canaries.add(id);
    }
    return this;
  }

  start(intervalMs = 200): this {
    this.timer ??= setInterval(() => {
      try {
        this.read();
      } catch {
        // a journal being rewritten (rename) between two reads: the next read sees it
      }
    }, intervalMs);
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Events not yet acknowledged in the folders now (the backlog). */
  backlog(): number {
    return this.dirs.reduce((n, d) => n + unacked(readOutbox(d)).length, 0);
  }
}
