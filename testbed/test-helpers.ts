/**
 * Test helpers: a small HTTP client for the testbed API and a server-sent-event
 * reader over fetch (Node 20 has no EventSource). Used by the *.test.ts files here.
 */
import { ManualClock } from './clock.ts';
import { startTestbed, type Testbed, type TestbedOptions } from './server.ts';

export interface Msg {
  id: string;
  conversation: string;
  from: string;
  text: string;
  at: string;
  delivered_at: string;
}

export interface Reply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: test responses are checked field by field by each test
  data: any;
  headers: Headers;
}

export class Client {
  token = '';
  constructor(
    readonly url: string,
    readonly handle: string,
  ) {}

  async call(method: string, path: string, body?: unknown): Promise<Reply> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await fetch(this.url + path, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, data: text ? JSON.parse(text) : null, headers: res.headers };
  }

  async send(conversation: string, text: string) {
    return this.call('POST', `/api/conversations/${conversation}/messages`, { text });
  }

  /** Every message listed for this account in `conversation`, following `after` pages. */
  async messages(conversation: string): Promise<Msg[]> {
    const all: Msg[] = [];
    for (;;) {
      const after = all.at(-1) ? `&after=${all.at(-1)?.id}` : '';
      const r = await this.call('GET', `/api/conversations/${conversation}/messages?limit=1000${after}`);
      if (r.status !== 200) throw new Error(`list failed: ${r.status} ${JSON.stringify(r.data)}`);
      all.push(...(r.data as Msg[]));
      if (r.data.length < 1000) return all;
    }
  }

  /** Messages others sent that reached this account. */
  async received(conversation: string): Promise<Msg[]> {
    return (await this.messages(conversation)).filter((m) => m.from !== this.handle);
  }
}

/** Sign up and log in `handle` (password "pw") in `region`. */
export async function account(url: string, handle: string, region: string): Promise<Client> {
  const c = new Client(url, handle);
  const up = await c.call('POST', '/api/accounts', { handle, password: 'pw', region });
  if (up.status !== 201) throw new Error(`sign-up failed: ${JSON.stringify(up.data)}`);
  const login = await c.call('POST', '/api/login', { handle, password: 'pw' });
  c.token = login.data.token;
  return c;
}

export async function direct(a: Client, b: Client): Promise<string> {
  const r = await a.call('POST', '/api/conversations', { kind: 'direct', with: b.handle });
  return r.data.id;
}

export async function group(owner: Client, members: Client[], title = 'group'): Promise<string> {
  const r = await owner.call('POST', '/api/conversations', {
    kind: 'group',
    title,
    members: members.map((m) => m.handle),
  });
  return r.data.id;
}

export const T0 = Date.parse('2026-06-01T00:00:00Z');

/** A testbed on port 0 with a manual clock at T0 (unless given) and a fixed seed. */
export async function testbed(
  policy: TestbedOptions['policy'],
  extra: Partial<TestbedOptions> = {},
): Promise<Testbed & { clock: ManualClock }> {
  const clock = extra.clock instanceof ManualClock ? extra.clock : new ManualClock(T0);
  const tb = await startTestbed({ policy, seed: 42, ...extra, clock });
  return Object.assign(tb, { clock });
}

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** An open SSE connection collecting events; `next(n)` waits for n events in total. */
export class SseReader {
  readonly events: SseEvent[] = [];
  private readonly controller = new AbortController();
  private waiters: Array<() => void> = [];
  readonly ready: Promise<void>;

  constructor(url: string, token: string, lastEventId?: string) {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'text/event-stream' };
    if (lastEventId) headers['last-event-id'] = lastEventId;
    this.ready = fetch(`${url}/api/stream`, { headers, signal: this.controller.signal }).then((res) => {
      if (res.status !== 200 || !res.body) throw new Error(`stream status ${res.status}`);
      void this.pump(res.body).catch(() => {});
    });
  }

  private async pump(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let cut = buffer.indexOf('\n\n');
      while (cut >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const ev: SseEvent = { event: 'message', data: '' };
        let hasData = false;
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const [field, ...rest] = line.split(':');
          const value = rest.join(':').replace(/^ /, '');
          if (field === 'id') ev.id = value;
          if (field === 'event') ev.event = value;
          if (field === 'data') {
            ev.data += (hasData ? '\n' : '') + value;
            hasData = true;
          }
        }
        if (hasData) {
          this.events.push(ev);
          for (const w of this.waiters) w();
        }
        cut = buffer.indexOf('\n\n');
      }
    }
  }

  messages(): Msg[] {
    return this.events.filter((e) => e.event === 'message').map((e) => JSON.parse(e.data) as Msg);
  }

  /** Wait until at least `count` events arrived (fails after `ms`). */
  async next(count: number, ms = 2000): Promise<SseEvent[]> {
    const deadline = Date.now() + ms;
    while (this.events.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.events.length} of ${count} SSE events arrived`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      this.waiters = [];
    }
    return this.events;
  }

  close(): void {
    this.controller.abort();
  }
}
