/** `stateFile`: accounts, tokens, conversations and timelines survive a restart; ids continue. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ManualClock } from './clock.ts';
import { StateSaver, snapshotSlices } from './persist.ts';
import type { Testbed } from './server.ts';
import { Store } from './store.ts';
import { account, Client, direct, group, SseReader, testbed } from './test-helpers.ts';

let tb: (Testbed & { clock: ManualClock }) | undefined;
afterEach(async () => {
  await tb?.close();
  tb = undefined;
});

const POLICY = { regions: ['CN', 'US'] };

describe('state file', () => {
  it('keeps accounts, tokens, conversations and messages across a restart', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tb-state-')), 'state.json');
    tb = await testbed(POLICY, { stateFile: file });
    const alice = await account(tb.url, 'alice', 'US');
    const bob = await account(tb.url, 'bob', 'CN');
    const d = await direct(alice, bob);
    const g = await group(alice, [bob], 'friends');
    const sent = await alice.send(d, 'hello bob');
    expect(sent.status).toBe(200);
    await tb.close();
    tb = undefined;
    expect(JSON.parse(readFileSync(file, 'utf8')).version).toBe(1);

    tb = await testbed(POLICY, { stateFile: file });
    const again = new Client(tb.url, 'alice');
    again.token = alice.token; // the token issued before the restart still works
    expect((await again.call('GET', '/api/me')).data).toEqual({ handle: 'alice', region: 'US' });
    const bob2 = new Client(tb.url, 'bob');
    const login = await bob2.call('POST', '/api/login', { handle: 'bob', password: 'pw' });
    expect(login.status).toBe(200);
    bob2.token = login.data.token;
    expect((await bob2.call('GET', '/api/conversations')).data.map((c: { id: string }) => c.id)).toEqual([
      d,
      g,
    ]);
    // The direct conversation is the same one from either side; new ids continue after the old.
    expect(await direct(bob2, again)).toBe(d);
    expect(await group(again, [bob2], 'second')).not.toBe(g);
    const received = await bob2.received(d);
    expect(received.map((m) => [m.id, m.text])).toEqual([[sent.data.id, 'hello bob']]);
    const next = await again.send(d, 'second');
    expect(next.data.id).not.toBe(sent.data.id);
    await tb.close();
    tb = await testbed(POLICY, { stateFile: file });

    // The SSE cursor from before the restart still resumes after the old messages.
    const reader = new SseReader(tb.url, bob2.token, '1');
    await reader.ready;
    await reader.next(1);
    reader.close();
    expect(reader.messages().map((m) => m.text)).toEqual(['second']);
  });

  it('refuses a state file it cannot read, naming it', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tb-state-')), 'state.json');
    writeFileSync(file, '{ not json');
    await expect(testbed(POLICY, { stateFile: file })).rejects.toThrow(/testbed state file .*state\.json/);
  });
});

describe('history limits', () => {
  it('drops timeline entries older than retainMs, keeps sequence numbers going, and resumes after the gap', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tb-state-')), 'state.json');
    tb = await testbed(POLICY, { stateFile: file, history: { retainMs: 60_000 } });
    const alice = await account(tb.url, 'alice', 'US');
    const bob = await account(tb.url, 'bob', 'CN');
    const d = await direct(alice, bob);
    await alice.send(d, 'one');
    await alice.send(d, 'two');
    tb.clock.advance(61_000);
    await alice.send(d, 'three');
    // bob's timeline keeps only 'three'; its sequence number is 3, not 1
    expect((await bob.received(d)).map((m) => m.text)).toEqual(['three']);
    const resumed = new SseReader(tb.url, bob.token, '1');
    await resumed.ready;
    await resumed.next(1);
    resumed.close();
    expect(resumed.events.map((e) => [e.id, JSON.parse(e.data).text])).toEqual([['3', 'three']]);

    // Across a restart, with every entry past the limit: the numbering still continues.
    await tb.close();
    const clock = tb.clock;
    tb = undefined;
    clock.advance(61_000);
    tb = await testbed(POLICY, { stateFile: file, history: { retainMs: 60_000 }, clock });
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    expect(saved.lastSeq).toMatchObject({ bob: 3 });
    const bob2 = new Client(tb.url, 'bob');
    bob2.token = bob.token;
    expect(await bob2.received(d)).toEqual([]);
    const alice2 = new Client(tb.url, 'alice');
    alice2.token = alice.token;
    await alice2.send(d, 'four');
    const reader = new SseReader(tb.url, bob2.token, '3');
    await reader.ready;
    await reader.next(1);
    reader.close();
    expect(reader.events.map((e) => [e.id, JSON.parse(e.data).text])).toEqual([['4', 'four']]);
  });

  it('keeps at most maxEntriesPerAccount entries, the newest', async () => {
    tb = await testbed(POLICY, { history: { maxEntriesPerAccount: 3 }, rateLimit: false });
    const alice = await account(tb.url, 'alice', 'US');
    const bob = await account(tb.url, 'bob', 'CN');
    const d = await direct(alice, bob);
    for (const text of ['a', 'b', 'c', 'd', 'e']) await alice.send(d, text);
    expect((await bob.received(d)).map((m) => m.text)).toEqual(['c', 'd', 'e']);
  });
});

/** A store on a fixed clock with alice (US) and `n` of her own messages, texts from `text`. */
function storeWithAlice(n: number, text: (i: number) => string): Store {
  const store = new Store({ now: () => Date.parse('2026-01-01T00:00:00Z') });
  store.addAccount({
    handle: 'alice',
    region: 'US',
    password: { salt: Buffer.from('s'), hash: Buffer.from('h') },
  });
  for (let i = 0; i < n; i++) {
    store.append('alice', 'own', {
      id: `m${i}`,
      conversation: 'c1',
      from: 'alice',
      text: text(i),
      at: '2026-01-01T00:00:00.000Z',
      delivered_at: '2026-01-01T00:00:00.000Z',
    });
  }
  return store;
}

describe('saving while running', () => {
  it('logs a save it cannot write and goes on (no rejection escapes)', async () => {
    const blocker = join(mkdtempSync(join(tmpdir(), 'tb-state-')), 'a-file');
    writeFileSync(blocker, 'not a folder');
    const errors: string[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => errors.push(line) });
    const store = new Store();
    const saver = new StateSaver(join(blocker, 'state.json'), store, log, 5);
    store.newMessageId();
    for (let i = 0; i < 100 && errors.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    await saver.close();
    // the first write at start, then the save in slices; close()'s write may add a third
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(errors.join('')).toMatch(/cannot save the testbed state/);
  });

  it('writes the state in slices that make the same JSON, and saves changes made during a save', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tb-state-')), 'state.json');
    const log = pino({ level: 'silent' });
    // Enough entries for several slices.
    const store = storeWithAlice(4_500, (i) => `text "${i}" \u2028 ✓`);
    const saver = new StateSaver(file, store, log, 10);
    const slices = [...snapshotSlices(store.snapshot())];
    expect(slices.length).toBeGreaterThan(3);
    expect(JSON.parse(slices.join(''))).toEqual(JSON.parse(JSON.stringify(store.snapshot())));
    const onDisk = () => JSON.parse(readFileSync(file, 'utf8')) as { timelines: { alice: unknown[] } };
    const until = async (check: () => boolean) => {
      for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
    };
    await until(() => onDisk().timelines.alice?.length === 4_500);
    expect(onDisk()).toEqual(JSON.parse(JSON.stringify(store.snapshot())));
    // A change after that save is written by the next one, without close().
    store.newMessageId();
    await until(() => (onDisk() as unknown as { nextMessage: number }).nextMessage === 2);
    expect((onDisk() as unknown as { nextMessage: number }).nextMessage).toBe(2);
    await saver.close();
    expect(onDisk()).toEqual(JSON.parse(JSON.stringify(store.snapshot())));
  });

  it('bounds a slice by characters too, and close() writes the last change after a save that runs, for every caller', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tb-state-')), 'state.json');
    // 60 entries of 100,000 characters: one slice of 2,000 entries would be 6 MB
    const store = storeWithAlice(60, (i) => String(i % 10).repeat(100_000));
    const saver = new StateSaver(file, store, pino({ level: 'silent' }), 1);
    const slices = [...snapshotSlices(store.snapshot())];
    expect(Math.max(...slices.map((x) => x.length))).toBeLessThan((1 << 20) + 100_200);
    expect(slices.length).toBeGreaterThan(5);
    expect(JSON.parse(slices.join(''))).toEqual(JSON.parse(JSON.stringify(store.snapshot())));
    // a save is running (scheduled 1 ms after the changes); a change now, then close at once
    await new Promise((r) => setTimeout(r, 5));
    store.newMessageId();
    // a second close() resolves only once the first one's final write is done
    const closes = [saver.close(), saver.close()];
    await closes[1];
    const onDisk = JSON.parse(readFileSync(file, 'utf8')) as {
      nextMessage: number;
      timelines: { alice: unknown[] };
    };
    expect(onDisk).toEqual(JSON.parse(JSON.stringify(store.snapshot())));
    expect(onDisk.timelines.alice).toHaveLength(60);
    await closes[0];
  });
});
