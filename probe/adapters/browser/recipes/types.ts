/**
 * A recipe says what differs between web chat clients; the engine around it (browser,
 * sessions, pacing, tabs, crash recovery, login command) is shared. A recipe keeps its
 * selectors in one object and touches the page only through the functions below.
 */
import type { Page } from 'puppeteer-core';
import type { FailureCode } from '../../../../protocol/index.ts';
import type { ConversationInfo } from '../../types.ts';
import type { Pacer } from '../pacing.ts';

export type LoginState =
  | { kind: 'logged_in'; handle?: string }
  | { kind: 'login_form'; error?: string }
  | { kind: 'qr' }
  | { kind: 'loading' };

export type SendOutcome =
  /** `at`: when the send was submitted (the click), not when "sent" appeared. */
  | { kind: 'sent'; at: Date; messageId?: string }
  /** The sender was shown a notice about the content (the message was refused). */
  | { kind: 'notice'; text: string }
  /** The send failed for a reason that is not about the content. */
  | { kind: 'failed'; code: FailureCode; text: string }
  | { kind: 'timeout' };

/** One message item as the in-page observer reports it. */
export interface SeenItem {
  id: string;
  from?: string;
  text: string;
}

/** A field of a login form, filled from `account.credentials[credential]`. */
export interface FormField {
  credential: string;
  selector: string;
  secret: boolean;
}

export interface Recipe {
  name: string;
  /** Bumped when the recipe's meaning changes; recorded as the adapter's client version. */
  version: string;
  /** Where the client lives; `settings.url` overrides. */
  startUrl(settingsUrl: string | undefined): string;
  /** Where the client is now: logged in, a login form, a QR code, or still loading. */
  loginState(page: Page): Promise<LoginState>;
  /** Present when the client has a form login that credentials can fill. */
  form?: {
    fields: readonly FormField[];
    /** Fill and submit with pacing; the engine waits for loginState afterwards. */
    submit(page: Page, credentials: Record<string, string>, pacer: Pacer): Promise<void>;
  };
  /** CSS selector of the QR code to screenshot, when the client logs in by QR. */
  qrSelector?: string;
  listConversations(page: Page): Promise<ConversationInfo[]>;
  /** Open a conversation as a person would; false when it is not in the list. */
  openConversation(page: Page, ref: string, pacer: Pacer, timeoutMs: number): Promise<boolean>;
  /** Is `ref` the conversation shown in this page now? */
  isOpen(page: Page, ref: string): Promise<boolean>;
  /** Type and send in the open conversation; tell "sent" from what the sender is shown. */
  send(page: Page, text: string, pacer: Pacer, timeoutMs: number): Promise<SendOutcome>;
  /**
   * Install an in-page observer of the open conversation's message list that calls
   * `window[binding](items)` with every message item present now and every one added
   * later (a MutationObserver, not a timer). The engine dedupes by id.
   */
  observe(page: Page, binding: string): Promise<void>;
}
