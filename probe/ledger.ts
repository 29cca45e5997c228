/**
 * The canary ledger: which canaries this probe was handed and how far each got, kept
 * in the same journal as the outbox so that one fsync'd record decides each step.
 *
 *   assigned  {k:'canary', a}        handed out at a check-in, to send at send_at
 *   sending   {k:'sending', id}      written *before* the adapter is asked to send
 *   done      an outbox event with this canary_id (sent / rejected / failed),
 *             compacted to {k:'done', id, ...}
 *
 * A canary id seen once is never sent again: a second hand-out is ignored, and a
 * canary found `sending` after a restart is not retried (the platform may have it);
 * the agent records it as failed with `send_timeout` ("unknown whether it left").
 */
import type { CanaryAssignment, ProbeEvent } from '../protocol/index.ts';
import type { JournalRecord } from './journal.ts';

export type CanaryState = 'assigned' | 'sending' | 'done';

interface Entry {
  state: CanaryState;
  assignment?: CanaryAssignment;
  platform: string;
  account: string;
  /** Probe clock, epoch ms: when it was assigned, or when it was done. */
  at: number;
  /** Whether the send reached the platform (for rate-limit accounting). */
  sent: boolean;
}

/** How long ids of finished canaries are kept to refuse a second hand-out. */
export const DONE_RETENTION_MS = 14 * 24 * 3600 * 1000;

export class CanaryLedger {
  private entries = new Map<string, Entry>();

  constructor(
    private readonly append: (records: JournalRecord[]) => Promise<void>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Replays one journal record (called by the store on open). */
  replay(rec: JournalRecord): void {
    switch (rec.k) {
      case 'canary': {
        const a = rec.a as CanaryAssignment;
        if (!this.entries.has(a.canary_id)) {
          this.entries.set(a.canary_id, {
            state: 'assigned',
            assignment: a,
            platform: a.platform,
            account: a.sender,
            at: Number(rec.at ?? 0),
            sent: false,
          });
        }
        break;
      }
      case 'sending': {
        const e = this.entries.get(String(rec.id));
        if (e && e.state === 'assigned') e.state = 'sending';
        break;
      }
      case 'done': {
        this.entries.set(String(rec.id), {
          state: 'done',
          platform: String(rec.platform),
          account: String(rec.account),
          at: Number(rec.at),
          sent: rec.sent === true,
        });
        break;
      }
      case 'ev':
        this.noteEvent(rec.ev as ProbeEvent);
        break;
    }
  }

  /** Called for every event the outbox stores: an event with a canary_id finishes it. */
  noteEvent(ev: ProbeEvent): void {
    if (ev.type === 'received') return;
    const prev = this.entries.get(ev.canary_id);
    this.entries.set(ev.canary_id, {
      state: 'done',
      platform: ev.platform,
      account: ev.account,
      at: Date.parse(ev.at) || this.now(),
      sent: ev.type === 'sent' || ev.type === 'rejected' || (prev?.sent ?? false),
    });
  }

  state(canaryId: string): CanaryState | undefined {
    return this.entries.get(canaryId)?.state;
  }

  /** Records a hand-out durably. Resolves false (and records nothing) for a known id. */
  async assign(a: CanaryAssignment): Promise<boolean> {
    if (this.entries.has(a.canary_id)) return false;
    const at = this.now();
    this.entries.set(a.canary_id, {
      state: 'assigned',
      assignment: a,
      platform: a.platform,
      account: a.sender,
      at,
      sent: false,
    });
    try {
      await this.append([{ k: 'canary', a, at }]);
    } catch (err) {
      // Not on disk: not taken (a later hand-out of the same canary is taken then).
      this.entries.delete(a.canary_id);
      throw err;
    }
    return true;
  }

  /** Records the intent to send, durably, before the adapter is called. */
  async markSending(canaryId: string): Promise<void> {
    const e = this.entries.get(canaryId);
    if (e?.state !== 'assigned') throw new Error(`canary ${canaryId} is not waiting to be sent`);
    e.state = 'sending';
    try {
      await this.append([{ k: 'sending', id: canaryId }]);
    } catch (err) {
      // Not on disk: the send must not happen, and may be tried again.
      e.state = 'assigned';
      throw err;
    }
  }

  /** Canaries still to send, and those whose send was interrupted by a crash. */
  unfinished(): { waiting: CanaryAssignment[]; interrupted: CanaryAssignment[] } {
    const waiting: CanaryAssignment[] = [];
    const interrupted: CanaryAssignment[] = [];
    for (const e of this.entries.values()) {
      if (!e.assignment) continue;
      if (e.state === 'assigned') waiting.push(e.assignment);
      else if (e.state === 'sending') interrupted.push(e.assignment);
    }
    return { waiting, interrupted };
  }

  /** Probe-clock times of sends by this account since `sinceMs` (seeds rate limits after a restart). */
  recentSends(platform: string, account: string, sinceMs: number): number[] {
    const out: number[] = [];
    for (const e of this.entries.values()) {
      if (e.sent && e.platform === platform && e.account === account && e.at >= sinceMs) out.push(e.at);
    }
    return out.sort((a, b) => a - b);
  }

  /** Records that keep the ledger's state after compaction. */
  snapshot(): JournalRecord[] {
    const cutoff = this.now() - DONE_RETENTION_MS;
    const out: JournalRecord[] = [];
    for (const [id, e] of this.entries) {
      if (e.state === 'done') {
        if (e.at < cutoff) {
          this.entries.delete(id);
          continue;
        }
        out.push({ k: 'done', id, platform: e.platform, account: e.account, at: e.at, sent: e.sent });
      } else {
        out.push({ k: 'canary', a: e.assignment, at: e.at });
        if (e.state === 'sending') out.push({ k: 'sending', id });
      }
    }
    return out;
  }

  get size(): number {
    return this.entries.size;
  }
}
