/**
 * The browser adapter: drives a platform's web client in the probe's one shared
 * Chromium, the way a person would, through a recipe (recipes/) that knows the client.
 * Registry key and folder name: `browser`. Settings: see settings.ts and
 * docs/adapters/browser.md.
 */
import type { AccountConfig, Adapter, AdapterContext, AdapterFactory, SendResult } from '../types.ts';
import { AdapterError } from '../types.ts';
import { getRecipe } from './recipes/index.ts';
import { BrowserSession } from './session.ts';
import { readSettings } from './settings.ts';

export const BROWSER_ADAPTER_VERSION = '0.1.0';

export function createBrowserAdapter(
  account: AccountConfig,
  ctx: AdapterContext,
): Adapter & { session: BrowserSession } {
  const settings = readSettings(account.settings);
  const recipe = getRecipe(settings.recipe);
  const log = ctx.logger.child({ adapter: 'browser', recipe: recipe.name, account: account.handle });
  const session = new BrowserSession(account, settings, recipe, ctx.stateDir, log);
  let observing = false;

  return {
    session,
    async connect() {
      try {
        let state = await session.open();
        if (
          state.kind === 'login_form' &&
          settings.autoLogin &&
          recipe.form &&
          account.credentials.password
        ) {
          log.info('stored session is gone; logging in with the form');
          state = await session.loginWithForm();
        }
        await session.confirmLoggedIn(state);
        log.info('connected');
      } catch (err) {
        await session.close().catch(() => undefined);
        throw err instanceof AdapterError
          ? err
          : new AdapterError('connection_lost', `connect: ${(err as Error).message}`, { cause: err });
      }
    },

    listConversations() {
      return session.run('listConversations', 'connection_lost', () =>
        recipe.listConversations(session.homePage()),
      );
    },

    async send(conversation, text): Promise<SendResult> {
      const outcome = await session.run('send', 'send_timeout', async (tab) => {
        const page = await tab(conversation);
        // A hidden tab renders no frames, and puppeteer's click waits for one (scrolling
        // the element into view): show this conversation's tab before typing into it.
        await page.bringToFront();
        await session.pacer.beforeSend();
        return recipe.send(page, text, session.pacer, settings.sendTimeoutMs);
      });
      switch (outcome.kind) {
        case 'sent':
          return {
            status: 'sent',
            at: outcome.at,
            ...(outcome.messageId ? { platformMessageId: outcome.messageId } : {}),
          };
        case 'notice':
          log.info({ conversation }, 'the sender was shown a notice');
          return { status: 'rejected', at: new Date(), failure: 'notice_shown', notice: outcome.text };
        case 'timeout':
          throw new AdapterError('send_timeout', `no "sent" or notice within ${settings.sendTimeoutMs} ms`);
        case 'failed':
          throw new AdapterError(outcome.code, `send: ${outcome.text}`);
      }
    },

    async observe(onMessage, onError) {
      if (observing) throw new AdapterError('adapter_error', 'observe() was already called');
      observing = true;
      await session.startWatching({ onMessage, onError });
    },

    close: () => session.close(),
  };
}

export const browser: AdapterFactory = {
  name: 'browser',
  version: BROWSER_ADAPTER_VERSION,
  create: createBrowserAdapter,
};

export { loginInteractive } from './login.ts';

export default browser;
