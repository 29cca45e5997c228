import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProbeLogger } from './logger.ts';

describe('probe logger', () => {
  it('redacts credentials, passwords, tokens, cookies and phone numbers wherever they sit', () => {
    const lines: string[] = [];
    const dest = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const log = createProbeLogger({ destination: dest }).child({ probe: 'p1', account: 'ann' });
    log.info(
      {
        enrollment_token: 'TOKEN-1',
        config: { accounts: [{ handle: 'ann', credentials: { password: 'PW-2' } }] },
        login: { credentials: { password: 'PW-3', phone: '+8613800000000' } },
        req: { headers: { authorization: 'Bearer TOKEN-4', cookie: 'sid=COOKIE-5' } },
        password: 'PW-6',
        phone_number: '+15550000000',
      },
      'hello',
    );
    const out = lines.join('');
    for (const secret of [
      'TOKEN-1',
      'PW-2',
      'PW-3',
      '+8613800000000',
      'TOKEN-4',
      'COOKIE-5',
      'PW-6',
      '+15550000000',
    ]) {
      expect(out).not.toContain(secret);
    }
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(rec).toMatchObject({ probe: 'p1', account: 'ann', msg: 'hello', password: '[redacted]' });
  });
});
