/**
 * Sending: run the engine on a message, record the sender's own copy, and deliver
 * each recipient's copy now or when its timer falls due. Pending timers are tracked
 * so `close()` leaves nothing behind.
 */
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from './clock.ts';
import { decide, type Participant } from './engine.ts';
import type { Policy } from './policy.ts';
import type { Rng } from './random.ts';
import type { Account, Conversation, MessageView, Store } from './store.ts';

export type SendResult =
  | { status: 'sent'; id: string; at: string }
  | { status: 'rejected'; notice: string; ruleId: string };

export class Dispatcher {
  private readonly pending = new Set<TimerHandle>();

  constructor(
    private readonly store: Store,
    private readonly policy: () => Policy,
    private readonly clock: Clock,
    private readonly rng: Rng,
    private readonly log: Logger,
  ) {}

  send(conversation: Conversation, sender: Account, text: string): SendResult {
    const now = this.clock.now();
    const recipients: Participant[] = conversation.members
      .filter((h) => h !== sender.handle)
      .map((h) => ({ handle: h, region: this.store.account(h)?.region ?? '' }));
    const decision = decide(
      this.policy(),
      {
        text,
        conversationKind: conversation.kind,
        sender: { handle: sender.handle, region: sender.region },
        recipients,
        at: now,
      },
      this.rng,
    );
    if (decision.kind === 'rejected') {
      this.log.info(
        { conversation: conversation.id, from: sender.handle, rule: decision.ruleId },
        'notice shown',
      );
      return { status: 'rejected', notice: decision.notice, ruleId: decision.ruleId };
    }

    const id = this.store.newMessageId();
    const at = new Date(now).toISOString();
    const base = { id, conversation: conversation.id, from: sender.handle, at };
    this.store.append(sender.handle, 'own', { ...base, text, delivered_at: at });
    for (const { recipient, fate } of decision.recipients) {
      const ctx = { message: id, conversation: conversation.id, from: sender.handle, to: recipient.handle };
      if (fate.kind === 'lost') {
        this.log.info({ ...ctx, reason: fate.reason, rule: fate.ruleId }, 'message lost for recipient');
        continue;
      }
      if (fate.ruleId) this.log.info({ ...ctx, rule: fate.ruleId }, 'rule applied');
      const copy = { ...base, text: fate.text };
      const wait = fate.at - now;
      if (wait <= 0) {
        this.deliver(recipient.handle, copy, now);
        continue;
      }
      const handle = this.clock.setTimeout(() => {
        this.pending.delete(handle);
        this.deliver(recipient.handle, copy, this.clock.now());
      }, wait);
      this.pending.add(handle);
    }
    return { status: 'sent', id, at };
  }

  private deliver(handle: string, copy: Omit<MessageView, 'delivered_at'>, at: number): void {
    this.store.append(handle, 'delivered', { ...copy, delivered_at: new Date(at).toISOString() });
  }

  /** Cancel every delivery not yet made (the testbed is closing). */
  close(): void {
    for (const handle of this.pending) this.clock.clearTimeout(handle);
    this.pending.clear();
  }
}
