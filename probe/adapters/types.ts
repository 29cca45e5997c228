/**
 * The one small interface every platform adapter implements. An adapter drives one
 * account on one platform: log in, list conversations, send, observe, close.
 *
 * An adapter throws (an AdapterError with a FailureCode) only when it could not run:
 * login lost, connection gone, browser crashed. A message the platform silently drops
 * is not an error: it is data the collector records as an outcome. A notice shown to
 * the sender is returned as `{ status: 'rejected' }`, not thrown.
 */
import type { Logger } from 'pino';
import type { ConversationKind, FailureCode } from '../../protocol/index.ts';

export interface AccountConfig {
  /** Adapter/platform key, equal to the adapter's folder name. */
  platform: string;
  handle: string;
  /** Registration region of the account (e.g. CN, US). */
  region: string;
  /** Secrets: stay on the probe, never logged or sent to the collector. */
  credentials: Record<string, unknown>;
  /** Adapter-specific settings (server address, recipe name, pacing, ...). */
  settings: Record<string, unknown>;
}

export interface AdapterContext {
  logger: Logger;
  /** A folder this account's adapter may keep state in (browser profile, session). */
  stateDir: string;
}

export interface ConversationInfo {
  /** The platform's id for the conversation (stable across restarts). */
  ref: string;
  kind: ConversationKind;
  /** Handles of all members, including this account. */
  members: string[];
  title?: string;
}

export type SendResult =
  | { status: 'sent'; at: Date; platformMessageId?: string }
  | { status: 'rejected'; at: Date; failure: FailureCode; notice?: string };

/** A message this account received from someone else, as its client shows it. */
export interface ObservedMessage {
  conversation: string;
  from?: string;
  text: string;
  at: Date;
  platformMessageId?: string;
}

export interface Adapter {
  /** Log in / connect. Throws AdapterError('login_required' | 'connection_lost' | ...). */
  connect(): Promise<void>;
  listConversations(): Promise<ConversationInfo[]>;
  /** Send as this account. Resolves `rejected` when the sender is shown a notice. */
  send(conversation: string, text: string): Promise<SendResult>;
  /**
   * Start delivering messages this account receives (from others) to `onMessage`.
   * Called once after connect; the adapter keeps observing across reconnects until close().
   * `onError` reports a failure the adapter could not recover from by itself.
   * `onMessage` may return a promise (typed `unknown` so any callback fits) that
   * settles once the probe stored the message durably; an adapter that keeps a resume
   * cursor (e.g. an SSE Last-Event-ID) should `await` it before advancing the cursor,
   * so a crash cannot skip a message.
   */
  observe(onMessage: (m: ObservedMessage) => unknown, onError: (e: Error) => void): Promise<void>;
  close(): Promise<void>;
}

export interface AdapterFactory {
  /** Equal to the folder name and the registry key. */
  name: string;
  version: string;
  create(account: AccountConfig, ctx: AdapterContext): Adapter;
}

/** The error an adapter throws when it cannot run. */
export class AdapterError extends Error {
  /** For `rate_limited`: how long the platform asked us to wait (e.g. Retry-After), ms. */
  public readonly retryAfterMs?: number;
  constructor(
    public readonly code: FailureCode,
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(message, options);
    this.name = 'AdapterError';
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}
