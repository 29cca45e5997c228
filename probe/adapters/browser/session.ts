/**
 * One account in the shared Chromium: its own BrowserContext (cookies, storage and
 * cache isolated from every other account), its stored web session restored into it,
 * one tab per conversation it sends to or watches, and recovery after a crash.
 *
 * All page work of one account runs one step at a time (a promise chain), so a send
 * never types into a tab that is being reopened.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { BrowserContext, Page } from 'puppeteer-core';
import type { FailureCode } from '../../../protocol/index.ts';
import { AdapterError, type ObservedMessage } from '../types.ts';
import { classify } from './classify.ts';
import { acquireBrowser, type EngineListener, type Lease } from './engine.ts';
import { Pacer } from './pacing.ts';
import type { LoginState, Recipe, SeenItem } from './recipes/types.ts';
import type { BrowserSettings } from './settings.ts';
import {
  captureState,
  readSeen,
  readState,
  restoreState,
  type StorageState,
  writeSeen,
  writeState,
} from './storage-state.ts';

export interface SessionAccount {
  handle: string;
  credentials: Record<string, unknown>;
}

interface Watcher {
  onMessage: (m: ObservedMessage) => void;
  onError: (e: Error) => void;
}

const SEEN_CAP = 20_000;

export class BrowserSession implements EngineListener {
  readonly pacer: Pacer;
  private lease?: Lease;
  private context?: BrowserContext;
  private home?: Page;
  /** Which conversation the home tab shows, once it was given one. */
  private homeRef?: string;
  private readonly tabs = new Map<string, Page>();
  private readonly exposed = new WeakSet<Page>();
  private state: StorageState;
  private generation = 0;
  private ready: Promise<void> = Promise.resolve();
  private chain: Promise<unknown> = Promise.resolve();
  private watcher?: Watcher;
  private readonly seen = new Set<string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;
  private loggedIn = false;
  private readonly binding = `__sd_${randomBytes(4).toString('hex')}`;

  constructor(
    readonly account: SessionAccount,
    readonly settings: BrowserSettings,
    readonly recipe: Recipe,
    private readonly stateDir: string,
    private readonly log: Logger,
  ) {
    this.pacer = new Pacer(settings.pacing);
    this.state = readState(stateDir);
    for (const key of readSeen(stateDir)) this.seen.add(key);
  }

  /** Run page work for this account after whatever is running now. */
  private serial<T>(step: () => Promise<T>): Promise<T> {
    const next = this.chain.then(step, step);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Join the shared Chromium, open this account's context and its home tab. */
  async open(): Promise<LoginState> {
    this.lease ??= await acquireBrowser(
      {
        executablePath: this.settings.executablePath,
        headless: this.settings.headless,
        userDataDir: this.settings.userDataDir,
      },
      this,
      this.log,
    );
    return this.serial(() => this.openContext()).catch((err: unknown) => {
      throw classify(err, 'opening the web client', { whileWaiting: 'connection_lost', crashed: false });
    });
  }

  private async openContext(): Promise<LoginState> {
    const browser = await this.lease!.browser();
    this.context = await browser.createBrowserContext();
    this.tabs.clear();
    this.homeRef = undefined;
    const page = await this.newPage();
    this.home = page;
    await restoreState(this.context, page, this.state, () => this.goto(page));
    return this.waitLoginState(page);
  }

  private async newPage(): Promise<Page> {
    if (!this.context) throw new AdapterError('browser_crashed', 'no browser context');
    const page = await this.context.newPage();
    page.setDefaultTimeout(this.settings.navigationTimeoutMs);
    page.setDefaultNavigationTimeout(this.settings.navigationTimeoutMs);
    page.on('error', (err) => this.onPageCrash(page, err));
    return page;
  }

  private goto(page: Page): Promise<unknown> {
    return page.goto(this.recipe.startUrl(this.settings.url), { waitUntil: 'domcontentloaded' });
  }

  /** Poll the recipe until the client has decided whether we are logged in. */
  async waitLoginState(page: Page, until?: (s: LoginState) => boolean): Promise<LoginState> {
    const deadline = Date.now() + this.settings.navigationTimeoutMs;
    for (;;) {
      const s = await this.recipe.loginState(page);
      if (until ? until(s) : s.kind !== 'loading') return s;
      if (Date.now() > deadline) return s;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  contextNow(): BrowserContext {
    if (!this.context) throw new AdapterError('browser_crashed', 'no browser context');
    return this.context;
  }

  homePage(): Page {
    if (!this.home || this.home.isClosed()) throw new AdapterError('browser_crashed', 'the home tab is gone');
    return this.home;
  }

  /** Fill the recipe's login form from credentials; resolves with the state after it. */
  async loginWithForm(): Promise<LoginState> {
    const form = this.recipe.form;
    if (!form) throw new AdapterError('login_required', `recipe ${this.recipe.name} has no form login`);
    const creds: Record<string, string> = {};
    for (const f of form.fields) {
      const v =
        f.credential === 'handle' ? (this.account.credentials.handle ?? this.account.handle) : undefined;
      const value = this.account.credentials[f.credential] ?? v;
      if (typeof value !== 'string') {
        throw new AdapterError(
          'login_required',
          `credentials.${f.credential} is missing for ${this.account.handle}`,
        );
      }
      creds[f.credential] = value;
    }
    return this.serial(async () => {
      const page = this.homePage();
      await form.submit(page, creds, this.pacer);
      return this.waitLoginState(
        page,
        (s) => s.kind === 'logged_in' || (s.kind === 'login_form' && !!s.error),
      );
    });
  }

  /** Check that the client is logged in as this account; start saving the session. */
  async confirmLoggedIn(state: LoginState): Promise<void> {
    if (state.kind !== 'logged_in') {
      const why = state.kind === 'login_form' && state.error ? `: ${state.error}` : '';
      throw new AdapterError(
        'login_required',
        `${this.account.handle} is not logged in (${state.kind}${why}); run silentdrop probe login`,
      );
    }
    if (state.handle && state.handle !== this.account.handle) {
      throw new AdapterError(
        'login_required',
        `the stored session is for ${state.handle}, not ${this.account.handle}; run silentdrop probe login`,
      );
    }
    this.loggedIn = true;
    await this.save();
    if (!this.timers.length && this.settings.saveStateEveryMs > 0) {
      const t = setInterval(() => void this.save().catch(() => undefined), this.settings.saveStateEveryMs);
      t.unref();
      this.timers.push(t);
    }
  }

  /** Write cookies and localStorage to the state folder. */
  async save(): Promise<void> {
    if (!this.context || this.closed || !this.loggedIn) return;
    const pages = [this.home, ...this.tabs.values()].filter((p): p is Page => !!p && !p.isClosed());
    this.state = await captureState(this.context, [...new Set(pages)], this.state);
    writeState(this.stateDir, this.state);
    // At least once: a message seen after this write is reported again after a restart.
    if (this.watcher) writeSeen(this.stateDir, [...this.seen].slice(-SEEN_CAP));
  }

  /** The tab showing `ref`, opened (and watched, when observing) on first use. */
  private async tabFor(ref: string): Promise<Page> {
    const open = this.tabs.get(ref);
    if (open && !open.isClosed()) return open;
    let page: Page;
    if (this.homeRef === undefined && this.home && !this.home.isClosed()) {
      page = this.home;
      this.homeRef = ref;
    } else {
      page = await this.newPage();
      await this.goto(page);
      const s = await this.waitLoginState(page);
      if (s.kind !== 'logged_in')
        throw new AdapterError('login_required', `${this.account.handle} was logged out`);
    }
    if (!(await this.recipe.openConversation(page, ref, this.pacer, this.settings.navigationTimeoutMs))) {
      if (page !== this.home) await page.close().catch(() => undefined);
      else this.homeRef = undefined;
      throw new AdapterError(
        'conversation_not_found',
        `conversation ${ref} is not in ${this.account.handle}'s list`,
      );
    }
    this.tabs.set(ref, page);
    if (this.watcher) await this.watch(page, ref);
    return page;
  }

  private async watch(page: Page, ref: string): Promise<void> {
    if (!this.exposed.has(page)) {
      await page.exposeFunction(this.binding, (items: SeenItem[]) => this.onSeen(ref, items));
      this.exposed.add(page);
    }
    await this.recipe.observe(page, this.binding);
  }

  private onSeen(ref: string, items: SeenItem[]): void {
    for (const item of items) {
      const key = `${ref}\u0000${item.id}`;
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      if (this.seen.size > SEEN_CAP) this.seen.delete(this.seen.values().next().value as string);
      if (item.from === this.account.handle) continue;
      this.watcher?.onMessage({
        conversation: ref,
        text: item.text,
        at: new Date(),
        platformMessageId: item.id,
        ...(item.from ? { from: item.from } : {}),
      });
    }
  }

  /** Run a step that needs the browser; errors become AdapterErrors. */
  async run<T>(
    step: string,
    whileWaiting: FailureCode,
    work: (tab: (ref: string) => Promise<Page>) => Promise<T>,
  ) {
    await this.ready;
    const gen = this.generation;
    try {
      return await this.serial(() => {
        if (gen !== this.generation)
          throw new AdapterError('browser_crashed', `${step}: the browser restarted`);
        return work((ref) => this.tabFor(ref));
      });
    } catch (err) {
      throw classify(err, step, { whileWaiting, crashed: gen !== this.generation });
    }
  }

  async startWatching(watcher: Watcher): Promise<void> {
    this.watcher = watcher;
    await this.run('observe', 'connection_lost', async (tab) => {
      for (const c of await this.recipe.listConversations(this.homePage())) await tab(c.ref);
    });
    if (this.settings.refreshConversationsEveryMs > 0) {
      const t = setInterval(() => void this.refresh(), this.settings.refreshConversationsEveryMs);
      t.unref();
      this.timers.push(t);
    }
  }

  /** Watch conversations that appeared since; notice a lost login. */
  private async refresh(): Promise<void> {
    await this.run('refresh', 'connection_lost', async (tab) => {
      const page = this.homePage();
      const s = await this.recipe.loginState(page);
      if (s.kind === 'login_form' || s.kind === 'qr') {
        throw new AdapterError('login_required', `${this.account.handle} was logged out`);
      }
      for (const c of await this.recipe.listConversations(page)) await tab(c.ref);
    }).catch((err: AdapterError) => {
      if (err.code === 'login_required') this.watcher?.onError(err);
      else this.log.warn({ err: err.message, code: err.code }, 'refreshing conversations failed');
    });
  }

  private onPageCrash(page: Page, err: Error): void {
    if (this.closed) return;
    this.log.warn({ err: err.message }, 'a tab crashed; reopening it');
    const ref = [...this.tabs].find(([, p]) => p === page)?.[0];
    if (ref) this.tabs.delete(ref);
    if (page === this.home) this.home = undefined;
    void page.close().catch(() => undefined);
    if (ref && this.watcher) {
      void this.run('reopen tab', 'connection_lost', (tab) => tab(ref)).catch((e: Error) =>
        this.watcher?.onError(e),
      );
    }
  }

  onCrash(): void {
    this.generation++;
    this.context = undefined;
    this.home = undefined;
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    this.ready = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.ready.catch(() => undefined);
    this.resumed = { resolve, reject };
  }

  private resumed?: { resolve: () => void; reject: (e: Error) => void };

  async onRestart(): Promise<void> {
    if (this.closed) return;
    const refs = [...this.tabs.keys()];
    try {
      await this.serial(async () => {
        const s = await this.openContext();
        if (s.kind !== 'logged_in') {
          throw new AdapterError(
            'login_required',
            `${this.account.handle} is not logged in after the restart`,
          );
        }
        for (const ref of refs) await this.tabFor(ref);
      });
      this.log.info({ tabs: refs.length }, 'pages reopened after a browser restart');
      this.resumed?.resolve();
    } catch (err) {
      const e = classify(err, 'restart', { whileWaiting: 'connection_lost', crashed: false });
      this.resumed?.reject(e);
      throw e;
    }
  }

  onFatal(err: AdapterError): void {
    this.resumed?.reject(err);
    this.watcher?.onError(err);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const t of this.timers) clearInterval(t);
    await this.serial(async () => {
      await this.save().catch((err: Error) =>
        this.log.warn({ err: err.message }, 'saving the session failed'),
      );
      this.closed = true;
      await this.context?.close().catch(() => undefined);
    });
    this.closed = true;
    this.watcher = undefined;
    this.context = undefined;
    await this.lease?.release();
    this.lease = undefined;
  }
}
