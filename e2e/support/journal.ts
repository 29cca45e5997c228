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
