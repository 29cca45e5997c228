/**
 * Recipe for the testbed's web client (contract: testbed/API.md, "Web client").
 * Every selector the recipe relies on is in `S`; everything else is shared engine.
 */
import type { Page } from 'puppeteer-core';
import type { ConversationInfo } from '../../types.ts';
import { evalIn, waitIn } from '../inpage.ts';
import type { Pacer } from '../pacing.ts';
import { failureFromText } from './notice.ts';
import { installObserver } from './observer.ts';
import type { LoginState, Recipe, SendOutcome } from './types.ts';

export const S = {
  loginForm: 'form#login',
  loginHandle: 'form#login input[name=handle]',
  loginPassword: 'form#login input[name=password]',
  loginSubmit: 'form#login button[type=submit]',
  loginError: '#login-error',
  me: '#me',
  conversationItem: '#conversations [data-conversation-id]',
  messageItem: '#messages .message',
  composerText: 'form#composer textarea[name=text]',
  composerSubmit: 'form#composer button[type=submit]',
  notice: '#notice',
  /** localStorage key of the client's session token. */
  tokenKey: 'testbed.token',
  sendError: '#send-error',
} as const;

type Sel = typeof S;

async function loginState(page: Page): Promise<LoginState> {
  return evalIn(
    page,
    (s: Sel): LoginState => {
      const visible = (el: Element | null): el is HTMLElement =>
        !!el && (el as HTMLElement).getClientRects().length > 0 && !(el as HTMLElement).hidden;
      const me = document.querySelector(s.me);
      const handle = me?.getAttribute('data-handle');
      if (visible(me) && handle) return { kind: 'logged_in', handle };
      // With a stored token the client shows the form until GET /api/me answers, then
      // either enters the chat or drops the token: until then it is still loading.
      if (localStorage.getItem(s.tokenKey)) return { kind: 'loading' };
      if (visible(document.querySelector(s.loginForm))) {
        const err = document.querySelector(s.loginError);
        const text = visible(err) ? (err.textContent ?? '').trim() : '';
        return text ? { kind: 'login_form', error: text } : { kind: 'login_form' };
      }
      return { kind: 'loading' };
    },
    S,
  );
}

async function clearField(page: Page, selector: string): Promise<void> {
  await evalIn(
    page,
    (sel: string) => {
      const el = document.querySelector(sel) as HTMLInputElement | HTMLTextAreaElement | null;
      if (!el) throw new Error(`no element ${sel}`);
      el.value = '';
      el.dispatchEvent(new Event('input', { bubbles: true }));
    },
    selector,
  );
}

async function fill(page: Page, selector: string, text: string, pacer: Pacer): Promise<void> {
  await pacer.beforeAction();
  await page.click(selector);
  await clearField(page, selector);
  await pacer.type(page, text);
}

async function listConversations(page: Page): Promise<ConversationInfo[]> {
  return evalIn(
    page,
    async (s: Sel): Promise<ConversationInfo[]> => {
      // The list shows ids, kinds and titles but not members, and it fills after login:
      // ask the API the client itself calls (with its own token) for the members, and
      // give the list up to 5 s to show every conversation the API knows.
      let members = new Map<string, string[]>();
      try {
        const token = localStorage.getItem(s.tokenKey);
        const res = await fetch('/api/conversations', { headers: { authorization: `Bearer ${token}` } });
        if (res.ok) {
          const list = (await res.json()) as { id: string; members: string[] }[];
          members = new Map(list.map((c) => [c.id, c.members]));
        }
      } catch {
        // members stay unknown ([]) rather than failing the listing
      }
      const shown = () => [...document.querySelectorAll(s.conversationItem)];
      const complete = () => {
        const ids = new Set(shown().map((el) => el.getAttribute('data-conversation-id')));
        return [...members.keys()].every((id) => ids.has(id));
      };
      if (!complete()) {
        await new Promise<void>((resolve) => {
          const mo = new MutationObserver(() => {
            if (complete()) done();
          });
          const timer = setTimeout(() => done(), 5000);
          const done = () => {
            mo.disconnect();
            clearTimeout(timer);
            resolve();
          };
          mo.observe(document.body, { childList: true, subtree: true });
        });
      }
      return shown().map((el) => {
        const ref = el.getAttribute('data-conversation-id') ?? '';
        const kind = el.getAttribute('data-kind') === 'group' ? 'group' : 'direct';
        const title = (el.textContent ?? '').trim();
        return { ref, kind, members: members.get(ref) ?? [], ...(title ? { title } : {}) };
      });
    },
    S,
  );
}

async function isOpen(page: Page, ref: string): Promise<boolean> {
  return evalIn(
    page,
    (s: Sel, r: string) => {
      const el = document.querySelector(`${s.conversationItem}[data-conversation-id="${CSS.escape(r)}"]`);
      return el?.getAttribute('aria-current') === 'true';
    },
    S,
    ref,
  );
}

async function openConversation(page: Page, ref: string, pacer: Pacer, timeoutMs: number): Promise<boolean> {
  if (await isOpen(page, ref)) return true;
  // The list fills after login; wait for it to show this conversation (or give up).
  const found = await waitIn(
    page,
    timeoutMs,
    (s: Sel, r: string) =>
      document.querySelector(`${s.conversationItem}[data-conversation-id="${CSS.escape(r)}"]`) ? 'yes' : null,
    S,
    ref,
  ).catch(() => undefined);
  if (!found) return false;
  await pacer.beforeAction();
  await page.click(`${S.conversationItem}[data-conversation-id="${cssString(ref)}"]`);
  await waitIn(
    page,
    timeoutMs,
    (s: Sel, r: string) =>
      document
        .querySelector(`${s.conversationItem}[data-conversation-id="${CSS.escape(r)}"]`)
        ?.getAttribute('aria-current') === 'true',
    S,
    ref,
  );
  return true;
}

/** Escape a value for a double-quoted CSS attribute selector (Node side). */
function cssString(v: string): string {
  return v.replace(/["\\]/g, '\\$&');
}

interface SendProbe {
  me: string;
  count: number;
}

type Seen =
  | { status: 'sent'; id: string }
  | { status: 'rejected'; text: string }
  | { status: 'failed'; text: string }
  | { status: 'logged_out' };

async function send(page: Page, text: string, pacer: Pacer, timeoutMs: number): Promise<SendOutcome> {
  const before = await evalIn(
    page,
    (s: Sel): SendProbe => ({
      me: document.querySelector(s.me)?.getAttribute('data-handle') ?? '',
      count: document.querySelectorAll(s.messageItem).length,
    }),
    S,
  );
  await fill(page, S.composerText, text, pacer);
  await pacer.beforeAction();
  const at = new Date();
  await page.click(S.composerSubmit);
  let seen: Seen;
  try {
    // The client appends a pending item for our message, then marks it sent (with the
    // server's id), rejected (with #notice) or failed (with #send-error); a lost
    // session sends it back to the login form.
    seen = await waitIn(
      page,
      timeoutMs,
      (s: Sel, b: SendProbe): Seen | null => {
        const shown = (sel: string) => {
          const el = document.querySelector(sel) as HTMLElement | null;
          return el && !el.hidden && el.getClientRects().length > 0 ? (el.textContent ?? '').trim() : '';
        };
        const form = document.querySelector(s.loginForm) as HTMLElement | null;
        if (form && form.getClientRects().length > 0) return { status: 'logged_out' };
        const item = [...document.querySelectorAll(s.messageItem)]
          .slice(b.count)
          .find((e) => e.getAttribute('data-from') === b.me);
        const status = item?.getAttribute('data-status');
        const id = item?.getAttribute('data-message-id');
        if (status === 'sent' && id) return { status: 'sent', id };
        if (status === 'rejected') return { status: 'rejected', text: shown(s.notice) };
        if (status === 'failed') return { status: 'failed', text: shown(s.sendError) };
        return null;
      },
      S,
      before,
    );
  } catch (err) {
    if (err instanceof Error && err.name === 'TimeoutError') return { kind: 'timeout' };
    throw err;
  }
  switch (seen.status) {
    case 'sent':
      return { kind: 'sent', at, messageId: seen.id };
    case 'rejected':
      return { kind: 'notice', text: seen.text };
    case 'failed':
      return { kind: 'failed', code: failureFromText(seen.text), text: seen.text };
    case 'logged_out':
      return { kind: 'failed', code: 'login_required', text: 'the client went back to its login form' };
  }
}

export const testbed: Recipe = {
  name: 'testbed',
  version: '1',
  startUrl: (url) => {
    if (!url) throw new Error('the testbed recipe needs settings.url (the testbed web client address)');
    return url;
  },
  loginState,
  form: {
    fields: [
      { credential: 'handle', selector: S.loginHandle, secret: false },
      { credential: 'password', selector: S.loginPassword, secret: true },
    ],
    async submit(page, credentials, pacer) {
      await fill(page, S.loginHandle, credentials.handle ?? '', pacer);
      await fill(page, S.loginPassword, credentials.password ?? '', pacer);
      await pacer.beforeAction();
      await page.click(S.loginSubmit);
    },
  },
  listConversations,
  openConversation,
  isOpen,
  send,
  observe: (page, binding) => installObserver(page, binding, { item: S.messageItem, text: '.text' }),
};
