/**
 * The browser adapter end to end: real headless Chromium driving the testbed's web
 * client on a real testbed (port 0). One Chromium for the whole file, a few pages.
 * Skips (with a notice) when no Chromium is found, unless SILENTDROP_REQUIRE_ALL=1.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestbed, type Testbed } from '../../../testbed/index.ts';
import { AdapterError } from '../types.ts';
import { pngToAscii } from './ascii.ts';
import { engineForTests } from './engine.ts';
import { loginInteractive } from './index.ts';
import { descendants, inGroups } from './procs.ts';
import { STATE_FILE } from './storage-state.ts';
import {
  account,
  api,
  chromiumOrUndefined,
  createGroup,
  nonce,
  signUp,
  tempStateDir,
  Watched,
} from './test-support.ts';

const chromium = await chromiumOrUndefined();
const required = process.env.SILENTDROP_REQUIRE_ALL === '1';
if (!chromium) {
  process.stderr.write(
    `\n[browser adapter tests] SKIPPED: no Chromium found (set SILENTDROP_CHROMIUM)${required ? ' — but SILENTDROP_REQUIRE_ALL=1' : ''}\n\n`,
  );
}

it.runIf(required)('finds Chromium when SILENTDROP_REQUIRE_ALL=1', () => {
  expect(chromium, 'no Chromium found: install chromium or set SILENTDROP_CHROMIUM').toBeDefined();
});

const POLICY = {
  regions: ['CN', 'US'],
  rules: [
    {
      id: 'overt',
      match: { any: ['法轮功'] },
      action: 'notice',
      notice: 'This message contains inappropriate content',
    },
    { id: 'silent', match: { all: ['709', '律师'] }, action: 'drop', scope: { recipient_region: ['CN'] } },
    { id: 'mask', match: { any: ['习近平'] }, action: 'replace', replace_with: '***' },
  ],
};

describe.skipIf(!chromium)('browser adapter on the testbed web client', () => {
  let tb: Testbed;
  let group: string;
  const dirs = { alice: tempStateDir('alice'), bob: tempStateDir('bob'), carol: tempStateDir('carol') };
  let alice: Watched; // US sender
  let bob: Watched; // CN recipient
  let carol: Watched; // US recipient
  let aliceToken: string;

  beforeAll(async () => {
    tb = await startTestbed({ policy: POLICY, port: 0, seed: 7 });
    aliceToken = await signUp(tb.url, 'alice', 'US');
    await signUp(tb.url, 'bob', 'CN');
    await signUp(tb.url, 'carol', 'US');
    group = await createGroup(tb.url, aliceToken, 'canaries', ['bob', 'carol']);
  });

  afterAll(async () => {
    for (const w of [alice, bob, carol]) await w?.adapter.close().catch(() => undefined);
    await tb?.close();
  });

  it('logs in through the form and keeps the session across an adapter close and reopen', async () => {
    let out = '';
    const result = await loginInteractive(account(tb.url, 'alice', 'US'), {
      stateDir: dirs.alice,
      out: { write: (t: string) => (out += t) },
      pollMs: 100,
    });
    expect(out).toContain('login form:');
    expect(out).toContain('logged in as alice');
    expect(out).not.toContain('pw-alice'); // the password is shown masked
    expect(result.stateFile).toBe(join(dirs.alice, STATE_FILE));
    expect(statSync(result.stateFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(result.stateFile, 'utf8')).toContain('testbed.token');

    // No password in the config: only the stored session can log this adapter in.
    const reopened = new Watched(account(tb.url, 'alice', 'US', { password: false }), dirs.alice);
    await reopened.adapter.connect();
    await reopened.adapter.close();
    alice = await new Watched(account(tb.url, 'alice', 'US', { password: false }), dirs.alice).start();

    // A fresh state folder without a password cannot log in: login_required.
    const stranger = new Watched(
      account(tb.url, 'carol', 'US', { password: false }),
      tempStateDir('stranger'),
    );
    await expect(stranger.adapter.connect()).rejects.toMatchObject({ code: 'login_required' });
  });

  it('saves a screenshot of the logged-in client', async () => {
    const page = (
      alice.adapter as unknown as { session: { homePage(): import('puppeteer-core').Page } }
    ).session.homePage();
    mkdirSync('test-output', { recursive: true });
    const file = join('test-output', 'browser-logged-in.png');
    writeFileSync(file, await page.screenshot({ type: 'png' }));
    const png = readFileSync(file);
    expect(png.length).toBeGreaterThan(2000);
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect(await page.$eval('#me', (el) => el.getAttribute('data-handle'))).toBe('alice');
  });

  it('renders a screenshot as terminal blocks for a headless operator', async () => {
    const session = (alice.adapter as unknown as { session: import('./session.ts').BrowserSession }).session;
    const page = await session.contextNow().newPage();
    await page.setViewport({ width: 80, height: 40 });
    await page.setContent(
      '<body style="margin:0;background:#fff"><div style="width:40px;height:40px;background:#000"></div></body>',
    );
    const ascii = await pngToAscii(session.contextNow(), await page.screenshot({ type: 'png' }), 16);
    await page.close();
    const lines = ascii.split('\n');
    expect(lines).toHaveLength(4);
    for (const line of lines) expect(line).toBe('████████');
  });

  it('lists the group with its members', async () => {
    bob = await new Watched(account(tb.url, 'bob', 'CN'), dirs.bob).start();
    carol = await new Watched(account(tb.url, 'carol', 'US'), dirs.carol).start();
    const list = await alice.adapter.listConversations();
    expect(list).toEqual([
      expect.objectContaining({
        ref: group,
        kind: 'group',
        members: expect.arrayContaining(['alice', 'bob', 'carol']),
      }),
    ]);
  });

  it('sends a plain canary: sent for the sender, observed in-page by both recipients', async () => {
    const n = nonce();
    const r = await alice.adapter.send(group, `weather today ${n}`);
    expect(r).toMatchObject({ status: 'sent', platformMessageId: expect.any(String) });
    const [b, c] = await Promise.all([bob.waitFor(n), carol.waitFor(n)]);
    expect(b).toMatchObject({ conversation: group, from: 'alice', text: `weather today ${n}` });
    expect(c.platformMessageId).toBe(r.status === 'sent' ? r.platformMessageId : 'x');
    expect(alice.seen.some((m) => m.text.includes(n))).toBe(false); // own messages are not receipts
  });

  it('returns rejected with the exact notice text when a notice rule fires', async () => {
    const n = nonce();
    const r = await alice.adapter.send(group, `法轮功 ${n}`);
    expect(r).toMatchObject({
      status: 'rejected',
      failure: 'notice_shown',
      notice: 'This message contains inappropriate content',
    });
  });

  it('reports a silent drop as sent; the CN recipient never sees it while the US one does', async () => {
    const n = nonce();
    const control = nonce();
    expect(await alice.adapter.send(group, `709 律师 ${n}`)).toMatchObject({ status: 'sent' });
    expect(await alice.adapter.send(group, `123 医生 ${control}`)).toMatchObject({ status: 'sent' });
    await carol.waitFor(n);
    await bob.waitFor(control); // bob's observer is live and saw the control sent after the test
    await sleep(500);
    expect(bob.seen.some((m) => m.text.includes(n))).toBe(false);
  });

  it('observes a replaced term as altered text', async () => {
    const n = nonce();
    expect(await alice.adapter.send(group, `习近平 ${n}`)).toMatchObject({ status: 'sent' });
    const seen = await bob.waitFor(n);
    expect(seen.text).toBe(`*** ${n}`);
  });

  it('fails an in-flight send as browser_crashed when Chromium is killed, restarts it, and carries on', async () => {
    const { browser } = engineForTests();
    const pid = browser?.process()?.pid;
    expect(pid).toBeGreaterThan(0);
    const slow = `${'x'.repeat(400)} ${nonce()}`;
    const inFlight = alice.adapter.send(group, slow);
    await sleep(300);
    process.kill(pid!, 'SIGKILL');
    const err = await inFlight.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AdapterError);
    expect((err as AdapterError).code).toBe('browser_crashed');

    // Sent while the browser is down: must still be observed once pages are back.
    const during = nonce();
    const posted = await api(
      tb.url,
      'POST',
      `/api/conversations/${group}/messages`,
      { text: `during ${during}` },
      aliceToken,
    );
    expect(posted.status).toBe(200);

    const after = nonce();
    const r = await alice.adapter.send(group, `after restart ${after}`);
    expect(r.status).toBe('sent');
    await Promise.all([
      bob.waitFor(during, 20_000),
      carol.waitFor(after, 20_000),
      bob.waitFor(after, 20_000),
    ]);
    expect(engineForTests().browser?.process()?.pid).not.toBe(pid);
    expect(inGroups([pid!])).toEqual([]); // the killed Chromium's renderers are gone too
    expect([...alice.errors, ...bob.errors, ...carol.errors]).toEqual([]);
  }, 60_000);

  it('reports what arrived while the adapter was closed after it reopens, and nothing twice', async () => {
    const before = bob.seen.length;
    expect(before).toBeGreaterThan(3);
    await bob.adapter.close();
    const n = nonce();
    expect(await alice.adapter.send(group, `while bob was away ${n}`)).toMatchObject({ status: 'sent' });
    bob = await new Watched(account(tb.url, 'bob', 'CN', { password: false }), dirs.bob).start();
    await bob.waitFor(n);
    await sleep(300);
    expect(bob.seen.map((m) => m.text)).toEqual([`while bob was away ${n}`]);
  });

  it('closes Chromium with the last adapter and leaves no process behind', async () => {
    const pids = [...engineForTests().launchedPids];
    expect(pids.length).toBeGreaterThanOrEqual(2);
    for (const w of [alice, bob, carol]) await w.adapter.close();
    expect(engineForTests().browser).toBeUndefined();
    await sleep(200);
    expect(inGroups(pids)).toEqual([]);
    expect(descendants(process.pid).filter((p) => /chrom/i.test(p.comm))).toEqual([]);
    expect(existsSync(join(dirs.bob, STATE_FILE))).toBe(true);
  });
});
