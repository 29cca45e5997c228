/**
 * A server-sent events parser over a fetch body stream, following the WHATWG
 * "event stream interpretation" rules: lines end in CRLF, LF or CR (also split across
 * chunks), `:` starts a comment, `data` lines join with "\n", `id` sets the last
 * event id (kept across events), a blank line dispatches.
 */
export interface SseEvent {
  event: string;
  data: string;
  /** The last event id in effect when this event was dispatched. */
  lastEventId: string;
}

export interface SseHandlers {
  onEvent: (e: SseEvent) => void | Promise<void>;
  /** Any bytes arrived (data, comments, pings): used to detect a stalled stream. */
  onActivity?: () => void;
  onRetry?: (ms: number) => void;
}

export class SseParser {
  private buf = '';
  private pendingCR = false;
  private data: string[] = [];
  private eventType = '';
  private hasData = false;
  lastEventId: string;

  constructor(lastEventId = '') {
    this.lastEventId = lastEventId;
  }

  /** Feeds decoded text; returns the events completed by it. */
  push(text: string, onRetry?: (ms: number) => void): SseEvent[] {
    const out: SseEvent[] = [];
    let s = text;
    if (this.pendingCR && s.startsWith('\n')) s = s.slice(1);
    this.pendingCR = false;
    this.buf += s;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (m[0] === '\r' && m.index === this.buf.length - 1) this.pendingCR = true;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      const ev = this.line(line, onRetry);
      if (ev) out.push(ev);
    }
    return out;
  }

  private line(line: string, onRetry?: (ms: number) => void): SseEvent | undefined {
    if (line === '') {
      const ev = this.hasData
        ? { event: this.eventType || 'message', data: this.data.join('\n'), lastEventId: this.lastEventId }
        : undefined;
      this.data = [];
      this.hasData = false;
      this.eventType = '';
      return ev;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        this.hasData = true;
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) onRetry?.(Number(value));
        break;
    }
    return undefined;
  }
}

/** Reads a body stream to its end, awaiting each event's handler in order. */
export async function readSse(
  body: ReadableStream<Uint8Array>,
  parser: SseParser,
  handlers: SseHandlers,
): Promise<void> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      handlers.onActivity?.();
      for (const ev of parser.push(decoder.decode(value, { stream: true }), handlers.onRetry)) {
        await handlers.onEvent(ev);
      }
    }
  } finally {
    reader.releaseLock();
  }
}
