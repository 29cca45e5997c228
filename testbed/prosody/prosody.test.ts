/**
 * startProsody as a platform: the server starts, its firewall compiled, and anything
 * that would leave it censoring less than the policy says fails loudly. Skips (reason
 * in the suite name) without Prosody unless SILENTDROP_REQUIRE_ALL=1.
 */
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  FirewallPolicyError,
  firewallFailure,
  firewallLoaded,
  prosodyAvailable,
  startProsody,
} from './index.ts';

const available = prosodyAvailable();

it.runIf(process.env.SILENTDROP_REQUIRE_ALL === '1')('finds Prosody when SILENTDROP_REQUIRE_ALL=1', () => {
  expect(available, 'install prosody and prosody-modules').toBe(true);
});

const ACCOUNTS = [
  { user: 'cn1', password: 'a', region: 'CN' },
  { user: 'us1', password: 'b', region: 'US' },
];

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('mod_firewall log checks', () => {
  const path = '/tmp/x/policy.pfw';
  it('recognises the Loaded line only for the script in question', () => {
    expect(firewallLoaded(`Nov 24 05:16:12 localhost:firewall\tdebug\tLoaded ${path}\n`, path)).toBe(true);
    expect(
      firewallLoaded('Nov 24 05:16:12 localhost:firewall\tdebug\tLoaded 2 items from /tmp/x/a.list\n', path),
    ).toBe(false);
  });
  it('finds a compile error', () => {
    const line = `Nov 24 localhost:firewall\terror\tError compiling ${path}: Unknown condition on line 3: FOO`;
    expect(firewallFailure(`x\n${line}\n`, path)).toBe(line);
    expect(firewallFailure('nothing to see', path)).toBeUndefined();
  });
});

describe.skipIf(!available)(
  `startProsody${available ? '' : ' — SKIPPED: /usr/bin/prosody or mod_firewall not installed'}`,
  () => {
    it('starts on a free loopback port with the generated firewall loaded, and cleans up on stop', async () => {
      const s = await startProsody({
        policy: {
          regions: ['CN', 'US'],
          rules: [
            {
              id: 'd',
              match: { all: ['a', 'b'] },
              action: 'drop',
              scope: { sender_region: ['US'], recipient_region: ['CN'] },
            },
            { id: 'n', match: { any: ['c'] }, action: 'notice', notice: 'no' },
          ],
        },
        accounts: ACCOUNTS,
        rooms: [{ name: 'g1', members: ['cn1', 'us1'] }],
      });
      try {
        expect(s.host).toBe('127.0.0.1');
        expect(await accepts(s.port)).toBe(true);
        const log = readFileSync(s.logPath, 'utf8');
        expect(firewallLoaded(log, s.firewallPath)).toBe(true);
        expect(readFileSync(s.configPath, 'utf8')).toMatch(/c2s_ports = \{ \d+ \}/);
        expect(readFileSync(`${s.dir}/sender-US.list`, 'utf8')).toBe('us1@localhost\n');
        expect(s.accountsDocument()).toEqual({
          platform: 'xmpp',
          server: { host: '127.0.0.1', port: s.port, domain: 'localhost', tls: false },
          accounts: [
            { handle: 'cn1@localhost', password: 'a', region: 'CN' },
            { handle: 'us1@localhost', password: 'b', region: 'US' },
          ],
          groups: [{ room: 'g1@conference.localhost', members: ['cn1@localhost', 'us1@localhost'] }],
        });
      } finally {
        await s.stop();
      }
      expect(await accepts(s.port)).toBe(false);
      expect(existsSync(s.dir)).toBe(false);
    });

    it('fails loudly when the firewall script does not compile (Prosody would fail open)', async () => {
      await expect(
        startProsody({
          policy: { regions: ['CN', 'US'] },
          accounts: ACCOUNTS,
          firewallScript: 'KIND: message\nNO SUCH CONDITION: x\nDROP.\n',
        }),
      ).rejects.toThrow(/firewall script did not compile.*Unknown condition/);
    });

    it('refuses a policy it cannot enforce before starting anything', async () => {
      await expect(
        startProsody({
          policy: {
            regions: ['CN'],
            rules: [{ id: 'slow', match: { any: ['x'] }, action: 'delay', delay_ms: 5 }],
          },
          accounts: [{ user: 'cn1', password: 'a', region: 'CN' }],
        }),
      ).rejects.toBeInstanceOf(FirewallPolicyError);
    });

    it('refuses an account whose region is not in the policy', async () => {
      await expect(
        startProsody({ policy: { regions: ['CN'] }, accounts: [{ user: 'x', password: 'a', region: 'US' }] }),
      ).rejects.toThrow(/region US is not in the policy/);
    });
  },
);
