import { describe, expect, it } from 'vitest';
import { failureFromText } from './notice.ts';

describe('send errors shown to the sender', () => {
  it('tells a rate limit, a lost session and a missing conversation from a connection problem', () => {
    expect(failureFromText('too many requests; retry in 3 s')).toBe('rate_limited');
    expect(failureFromText('log in first (missing or unknown token)')).toBe('login_required');
    expect(failureFromText('no conversation c1 for this account')).toBe('conversation_not_found');
    expect(failureFromText('Could not send')).toBe('connection_lost');
  });
});
