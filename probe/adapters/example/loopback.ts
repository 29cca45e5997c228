/**
 * An in-memory chat "platform" shared by every example adapter in one process, keyed
 * by network name. It exists only so the example adapter has something real to talk
 * to; a real adapter talks to a real platform instead.
 */
export interface LoopbackMessage {
  id: string;
  conversation: string;
  from: string;
  text: string;
  at: Date;
}

export interface LoopbackConversation {
  id: string;
  kind: 'direct' | 'group';
  members: string[];
  title?: string;
}

type Listener = (m: LoopbackMessage) => void;

export class LoopbackNetwork {
  private passwords = new Map<string, string>();
  private conversations = new Map<string, LoopbackConversation>();
  private listeners = new Map<string, Set<Listener>>();
  private seq = 0;

  /** Signs up on first use; afterwards the password must match. */
  login(handle: string, password: string): boolean {
    const known = this.passwords.get(handle);
    if (known === undefined) {
      this.passwords.set(handle, password);
      return true;
    }
    return known === password;
  }

  addConversation(c: LoopbackConversation): void {
    if (!this.conversations.has(c.id)) this.conversations.set(c.id, { ...c, members: [...c.members] });
  }

  conversationsOf(handle: string): LoopbackConversation[] {
    return [...this.conversations.values()].filter((c) => c.members.includes(handle));
  }

  conversation(id: string): LoopbackConversation | undefined {
    return this.conversations.get(id);
  }

  /** Delivers to every other member at once; returns the stored message. */
  post(conversation: LoopbackConversation, from: string, text: string): LoopbackMessage {
    this.seq += 1;
    const m: LoopbackMessage = {
      id: `m${this.seq}`,
      conversation: conversation.id,
      from,
      text,
      at: new Date(),
    };
    for (const member of conversation.members) {
      if (member === from) continue;
      for (const l of this.listeners.get(member) ?? []) l(m);
    }
    return m;
  }

  listen(handle: string, l: Listener): () => void {
    let set = this.listeners.get(handle);
    if (!set) {
      set = new Set();
      this.listeners.set(handle, set);
    }
    set.add(l);
    return () => set.delete(l);
  }
}

const networks = new Map<string, LoopbackNetwork>();

export function loopbackNetwork(name: string): LoopbackNetwork {
  let n = networks.get(name);
  if (!n) {
    n = new LoopbackNetwork();
    networks.set(name, n);
  }
  return n;
}
