import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { type AccountConfig, AdapterError, type ObservedMessage } from '../types.ts';
import factory from './index.ts';

const ctx = { logger: pino({ level: 'silent' }), stateDir: '/nonexistent' };
const account = (handle: string, over: Partial<AccountConfig> = {}): AccountConfig => ({
  platform: 'example',
  handle,
  region: 'US',
  credentials: { password: `pw-${handle}` },
  settings: {
    network: 'example-test',
    conversations: [{ id: 'g1', kind: 'group', members: ['ann', 'ben', 'cy'] }],
    notice_terms: ['forbidden'],
  },
  ...over,
});

describe('example adapter (the template)', () => {
  it('delivers a message to the other members, never back to the sender', async () => {
    const ann = factory.create(account('ann'), ctx);
    const ben = factory.create(account('ben'), ctx);
    await ann.connect();
    await ben.connect();
    const annSaw: ObservedMessage[] = [];
    const benSaw: ObservedMessage[] = [];
    await ann.observe(
      (m) => void annSaw.push(m),
      () => undefined,
    );
    await ben.observe(
      (m) => void benSaw.push(m),
      () => undefined,
    );
    const res = await ann.send('g1', 'hello sdabcdefghijkl');
    expect(res.status).toBe('sent');
    expect(benSaw).toEqual([
      expect.objectContaining({ conversation: 'g1', from: 'ann', text: 'hello sdabcdefghijkl' }),
    ]);
    expect(annSaw).toEqual([]);
    expect(await ben.listConversations()).toEqual([
      { ref: 'g1', kind: 'group', members: ['ann', 'ben', 'cy'] },
    ]);
    await ann.close();
    await ben.close();
  });

  it('answers rejected with the notice for a notice term, and delivers nothing', async () => {
    const ann = factory.create(account('ann'), ctx);
    const ben = factory.create(account('ben'), ctx);
    await ann.connect();
    await ben.connect();
    const seen: ObservedMessage[] = [];
    await ben.observe(
      (m) => void seen.push(m),
      () => undefined,
    );
    const res = await ann.send('g1', 'a forbidden word');
    expect(res).toMatchObject({ status: 'rejected', failure: 'notice_shown', notice: expect.any(String) });
    expect(seen).toEqual([]);
    await ann.close();
    await ben.close();
  });

  it('throws AdapterError for a wrong password and an unknown conversation', async () => {
    const first = factory.create(account('dee'), ctx);
    await first.connect();
    const wrong = factory.create(account('dee', { credentials: { password: 'nope' } }), ctx);
    await expect(wrong.connect()).rejects.toMatchObject({ code: 'login_required' });
    await expect(first.send('nowhere', 'x')).rejects.toBeInstanceOf(AdapterError);
    await expect(first.send('nowhere', 'x')).rejects.toMatchObject({ code: 'conversation_not_found' });
  });
});
