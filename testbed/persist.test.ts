/** `stateFile`: accounts, tokens, conversations and timelines survive a restart; ids continue. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ManualClock } from './clock.ts';
import type { Testbed } from './server.ts';
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
