/**
 * `silentdrop evaluate --accounts` against a real XMPP server nobody on this project wrote:
 * Debian's Prosody with mod_firewall censoring by a testbed-style policy (testbed/prosody).
 * The censorship table in one policy: a silent drop per recipient in group chats only (direct
 * vs group, per recipient), a bounce seen by the sender (`rejected`), and a combination that
 * fires only with both terms. The report must name exactly these rules and `none` elsewhere.
 * Skipped with a notice when Prosody is not installed, unless SILENTDROP_REQUIRE_ALL=1.
 */
import { describe, expect, it } from 'vitest';
import { prosodyAvailable, startProsody } from '../../testbed/prosody/index.ts';
import { type RuleLike, reportMismatches } from './expect.ts';
import { runEvaluation } from './run.ts';

const available = prosodyAvailable();
const requireAll = process.env.SILENTDROP_REQUIRE_ALL === '1';

it.runIf(requireAll)('finds Prosody with mod_firewall (SILENTDROP_REQUIRE_ALL=1)', () => {
  expect(available, 'prosody / prosody-modules are not installed').toBe(true);
});

const rules: (RuleLike & Record<string, unknown>)[] = [
  {
    id: 'june4',
    match: { any: ['六四'] },
    action: 'drop',
    scope: { conversation: 'group', recipient_region: ['CN'] },
  },
  { id: 'overt', match: { any: ['法轮功'] }, action: 'notice', notice: 'policy violation' },
  { id: 'combo', match: { all: ['709', '律师'] }, action: 'drop', scope: { conversation: 'direct' } },
];

describe.skipIf(!available)(
  `evaluate --accounts on Prosody${available ? '' : ' [skipped: prosody not installed]'}`,
  () => {
    // Runs in the evaluate phase of `npm test` (vitest.evaluate.config.ts), alone.
    it('reports exactly the firewall rules, none elsewhere', async () => {
      const server = await startProsody({
        policy: { regions: ['CN', 'US'], rules },
        accounts: [
          { user: 'cn1', password: 'pw-cn1', region: 'CN' },
          { user: 'cn2', password: 'pw-cn2', region: 'CN' },
          { user: 'us1', password: 'pw-us1', region: 'US' },
          { user: 'us2', password: 'pw-us2', region: 'US' },
        ],
        rooms: [{ name: 'g1', members: ['cn1', 'cn2', 'us1', 'us2'] }],
      });
      try {
        const result = await runEvaluation({
          accounts: server.accountsDocument(),
          terms: '六四\n法轮功\n709 + 律师\n709\n',
          cadence: '*/2 * * * * *',
          deadlineSeconds: 3,
          timeoutMs: 240_000,
          seed: 'xmpp-table',
        });
        const expected = [['六四'], ['法轮功'], ['709', '律师'], ['709']];
        expect(reportMismatches(rules, result.report.findings, expected)).toEqual([]);
        // direct CN→CN, CN→US, US→CN, US→US and the same four in the group
        expect(result.report.findings.length).toBe(expected.length * 8);
        expect(result.settled).toBe(true);
      } finally {
        await server.stop();
      }
    }, 300_000);
  },
);

if (!available && !requireAll) {
  describe('evaluate --accounts on Prosody', () => {
    it.skip('needs prosody and prosody-modules (mod_firewall): install them or see .ci/run', () => {});
  });
}
