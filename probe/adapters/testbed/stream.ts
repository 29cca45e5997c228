/**
 * Observes one testbed account through `GET /api/stream` (server-sent events), and
 * keeps observing: reconnects with backoff, resumes with `Last-Event-ID` so nothing
 * delivered in between is missed, and treats a stream silent for `stallMs` (the
 * testbed pings every 15 s) as dead. The last handled event id is saved in the
 * account's state folder, advanced only after the probe stored the message, so a
 * restarted probe resumes where it stopped; a message seen twice after a crash is
 * harmless (the probe derives the event id from the message id).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { atomicWriteFile, ensurePrivateDir } from '../../fsutil.ts';
import { AdapterError, type ObservedMessage } from '../types.ts';
import type { TestbedApi } from './api.ts';
import { readSse, SseParser } from './sse.ts';

export interface StreamOptions {
  api: TestbedApi;
  handle: string;
  stateDir: string;
  logger: Logger;
  stallMs: number;
  onMessage: (m: ObservedMessage) => unknown;
  onError: (e: Error) => void;
  fetch?: typeof fetch;
}

interface WireMessage {
  id: string | number;
  conversation: string;
  from: string;
  text: string;
  /** When the platform accepted the message (the sender's time). */
  at: string;
  /** When it reached this account (testbed/API.md); the receipt time. */
  delivered_at?: string;
}

export class TestbedStream {
  private stopped = false;
  private controller?: AbortController;
  private wake?: () => void;
  private running?: Promise<void>;
  private cursor = '';
  private savedCursor = '';
  private saveTimer?: NodeJS.Timeout;
  private readonly cursorPath: string;

  constructor(private readonly o: StreamOptions) {
    this.cursorPath = join(o.stateDir, 'stream-cursor.json');
  }

  async start(): Promise<void> {
    await ensurePrivateDir(this.o.stateDir);
    try {
      const saved = JSON.parse(await readFile(this.cursorPath, 'utf8')) as { last_event_id?: unknown };
      if (typeof saved.last_event_id === 'string') this.cursor = this.savedCursor = saved.last_event_id;
    } catch {
      // no cursor yet (first run) or unreadable: start from now
    }
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.controller?.abort();
    this.wake?.();
    await this.running;
    clearTimeout(this.saveTimer);
    await this.saveCursor();
  }

  /** Last event id handled (for tests and logs). */
  get lastEventId(): string {
    return this.cursor;
  }

  private async loop(): Promise<void> {
    const log = this.o.logger;
    let attempt = 0;
    while (!this.stopped) {
      const controller = new AbortController();
      this.controller = controller;
      let stall: NodeJS.Timeout | undefined;
      const resetStall = () => {
        clearTimeout(stall);
        stall = setTimeout(() => controller.abort(new Error('stream stalled')), this.o.stallMs);
      };
      try {
        if (!this.o.api.bearer) await this.o.api.login();
        const headers: Record<string, string> = {
          accept: 'text/event-stream',
          authorization: `Bearer ${this.o.api.bearer ?? ''}`,
        };
        if (this.cursor) headers['last-event-id'] = this.cursor;
        resetStall();
        const res = await (this.o.fetch ?? fetch)(this.o.api.url('/api/stream'), {
          headers,
          signal: controller.signal,
        });
        if (res.status === 401) {
          await res.body?.cancel();
          await this.o.api.login(); // throws login_required when the password no longer works
          continue;
        }
        if (!res.ok || !res.body) {
          await res.body?.cancel();
          throw new Error(`stream answered HTTP ${res.status}`);
        }
        if (attempt > 0)
          log.info({ after_attempts: attempt, resume_from: this.cursor || null }, 'stream reconnected');
        attempt = 0;
        const parser = new SseParser(this.cursor);
        await readSse(res.body, parser, {
          onActivity: resetStall,
          onEvent: async (e) => {
            if (e.event === 'message') await this.handle(e.data);
            // Advance only after the probe has the message (handle() awaited it).
            if (e.lastEventId) this.setCursor(e.lastEventId);
          },
        });
        if (!this.stopped) throw new Error('stream closed by the testbed');
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof AdapterError && err.code === 'login_required') {
          log.error({ err }, 'testbed login no longer works; observing stopped');
          this.o.onError(err);
          break;
        }
        attempt += 1;
        const delay = Math.min(30_000, 500 * 2 ** Math.min(attempt - 1, 6)) * (0.5 + Math.random() / 2);
        log.warn({ err, retry_in_ms: Math.round(delay) }, 'testbed stream interrupted; reconnecting');
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      } finally {
        clearTimeout(stall);
      }
    }
  }

  private async handle(data: string): Promise<void> {
    let m: WireMessage;
    try {
      m = JSON.parse(data) as WireMessage;
    } catch {
      this.o.logger.warn(
        { data: data.slice(0, 200) },
        'testbed stream sent a message that is not JSON; skipped',
      );
      return;
    }
    if (typeof m.text !== 'string' || typeof m.conversation !== 'string') return;
    if (m.from === this.o.handle) return; // our own sends are not receipts
    // The receipt time is when the message reached this account, not when it was sent:
    // a message held back by the platform (delay) must look late.
    const at = new Date(m.delivered_at ?? m.at);
    await this.o.onMessage({
      conversation: m.conversation,
      ...(typeof m.from === 'string' ? { from: m.from } : {}),
      text: m.text,
      at: Number.isNaN(at.getTime()) ? new Date() : at,
      ...(m.id !== undefined ? { platformMessageId: String(m.id) } : {}),
    });
  }

  private setCursor(id: string): void {
    this.cursor = id;
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void this.saveCursor().catch((err) => this.o.logger.warn({ err }, 'cannot save the stream cursor'));
    }, 1000);
  }

  private async saveCursor(): Promise<void> {
    if (this.cursor === this.savedCursor) return;
    const c = this.cursor;
    await atomicWriteFile(this.cursorPath, `${JSON.stringify({ last_event_id: c })}\n`);
    this.savedCursor = c;
  }
}
