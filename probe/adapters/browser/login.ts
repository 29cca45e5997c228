/**
 * Logging an account in from a server with no screen (`silentdrop probe login`): open
 * the recipe's client, show its state in the terminal and as a PNG in the account's
 * state folder, fill a login form from credentials where the recipe has one, wait for
 * the person to scan a QR code where it does not, then store the session.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { Page } from 'puppeteer-core';
import { type AccountConfig, AdapterError } from '../types.ts';
import { pngToAscii } from './ascii.ts';
import { evalIn } from './inpage.ts';
import { getRecipe } from './recipes/index.ts';
import type { LoginState, Recipe } from './recipes/types.ts';
import { BrowserSession } from './session.ts';
import { readSettings } from './settings.ts';
import { STATE_FILE } from './storage-state.ts';

export interface LoginOptions {
  stateDir: string;
  /** Where the terminal rendering goes (the CLI passes process.stdout). */
  out: { write(text: string): unknown };
  logger?: Logger;
  /** How long to wait for the person (QR) or the platform; default 5 minutes. */
  timeoutMs?: number;
  /** How often the screen is re-read while waiting; default 2 s. */
  pollMs?: number;
}

export interface LoginResult {
  handle: string;
  stateFile: string;
  screenshot: string;
}

export async function loginInteractive(account: AccountConfig, opts: LoginOptions): Promise<LoginResult> {
  const settings = readSettings(account.settings);
  const recipe = getRecipe(settings.recipe);
  const logger = (opts.logger ?? pino({ level: 'warn' })).child({
    adapter: 'browser',
    account: account.handle,
  });
  const session = new BrowserSession(account, settings, recipe, opts.stateDir, logger);
  const timeoutMs = opts.timeoutMs ?? 5 * 60_000;
  const pollMs = opts.pollMs ?? 2000;
  const screenshot = join(opts.stateDir, 'login.png');
  const say = (line: string) => opts.out.write(`${line}\n`);
  mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
  try {
    let state = await session.open();
    const page = session.homePage();
    const deadline = Date.now() + timeoutMs;
    let submitted = false;
    let lastRendering = '';
    for (;;) {
      const rendering = await render(page, recipe, state, screenshot, session);
      if (rendering !== lastRendering) {
        say(rendering);
        lastRendering = rendering;
      }
      if (state.kind === 'logged_in') break;
      if (state.kind === 'login_form') {
        if (state.error && submitted)
          throw new AdapterError('login_required', `login refused: ${state.error}`);
        if (!submitted) {
          if (!recipe.form)
            throw new AdapterError('login_required', `recipe ${recipe.name} cannot fill a form`);
          say('filling the login form from the account credentials…');
          state = await session.loginWithForm();
          submitted = true;
          continue;
        }
      }
      if (Date.now() > deadline) {
        throw new AdapterError('login_required', `not logged in after ${Math.round(timeoutMs / 1000)} s`);
      }
      await new Promise((r) => setTimeout(r, pollMs));
      state = await recipe.loginState(page);
    }
    await session.confirmLoggedIn(state);
    writeFileSync(screenshot, await page.screenshot({ type: 'png' }), { mode: 0o600 });
    const stateFile = join(opts.stateDir, STATE_FILE);
    say(`logged in as ${state.handle ?? account.handle}; session stored in ${stateFile}`);
    return { handle: state.handle ?? account.handle, stateFile, screenshot };
  } finally {
    await session.close();
  }
}

/** Screenshot to `file` and describe the screen as text (QR as blocks, form as fields). */
async function render(
  page: Page,
  recipe: Recipe,
  state: LoginState,
  file: string,
  session: BrowserSession,
): Promise<string> {
  const png = await page.screenshot({ type: 'png' });
  writeFileSync(file, png, { mode: 0o600 });
  const head = `[${recipe.name}] ${state.kind.replace('_', ' ')} — screenshot: ${file}`;
  if (state.kind === 'qr' && recipe.qrSelector) {
    const el = await page.$(recipe.qrSelector);
    const qrPng = el ? await el.screenshot({ type: 'png' }) : png;
    const qrFile = file.replace(/\.png$/, '-qr.png');
    writeFileSync(qrFile, qrPng, { mode: 0o600 });
    const ascii = await pngToAscii(session.contextNow(), qrPng, 64);
    return `${head}\nscan this QR code with the account's phone (also in ${qrFile}):\n${ascii}`;
  }
  if (state.kind === 'login_form' && recipe.form) {
    const fields = await evalIn(
      page,
      (fs: { selector: string; secret: boolean; credential: string }[]) =>
        fs.map((f) => {
          const v = (document.querySelector(f.selector) as HTMLInputElement | null)?.value ?? '';
          return `  ${f.credential}: ${f.secret ? '*'.repeat(v.length) : v || '(empty)'}`;
        }),
      recipe.form.fields.map((f) => ({ ...f })),
    );
    return [head, 'login form:', ...fields, ...(state.error ? [`  error: ${state.error}`] : [])].join('\n');
  }
  return head;
}
