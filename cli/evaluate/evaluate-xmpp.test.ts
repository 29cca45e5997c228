/**
 * `silentdrop evaluate --accounts` against a real XMPP server nobody on this project wrote:
 * Debian's Prosody with mod_firewall censoring by a testbed-style policy (testbed/prosody).
 * The censorship table in one policy: a silent drop per recipient in group chats only (direct
 * vs group, per recipient), a bounce seen by the sender (`rejected`), and a combination that
 * fires only with both terms. The report must name exactly these rules and `none` elsewhere.
 * Prosody is restarted in the middle of the run: the probes' adapters reconnect, and every
 * canary handed to a probe still ends as exactly one send report in Postgres (sent, rejected
 * or failed: none lost, none twice), with receipts recorded after the restart.
 * Skipped with a notice when Prosody is not installed, unless SILENTDROP_REQUIRE_ALL=1.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { openDatabase, rows } from '../../collector/db/open.ts';
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
    it('reports exactly the firewall rules, none elsewhere, through a Prosody restart', async () => {
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
      const dataDir = mkdtempSync(join(tmpdir(), 'sd-evaluate-xmpp-'));
      let restartedAt = 0;
      let restartDone = 0;
      let restartError: unknown;
      const restart = setTimeout(() => {
        restartedAt = Date.now();
        server.restart().then(
          () => {
            restartDone = Date.now();
          },
          (err: unknown) => {
            restartError = err;
          },
        );
      }, 30_000);
      try {
        const result = await runEvaluation({
          accounts: server.accountsDocument(),
          terms: '六四\n法轮功\n709 + 律师\n709\n',
          cadence: '*/2 * * * * *',
          deadlineSeconds: 3,
          timeoutMs: 240_000,
          seed: 'xmpp-table',
          mode: 'isolate',
          dataDir,
        });
        const endedAt = Date.now();
        clearTimeout(restart);
        expect(restartError).toBeUndefined();
        expect(restartDone, 'Prosody was restarted during the run').toBeGreaterThan(0);
        const expected = [['六四'], ['法轮功'], ['709', '律师'], ['709']];
        expect(reportMismatches(rules, result.report.findings, expected)).toEqual([]);
        // direct CN→CN, CN→US, US→CN, US→US and the same four in the group
        expect(result.report.findings.length).toBe(expected.length * 8);
        expect(result.settled).toBe(true);

        // Nothing lost across the restart: every canary handed out whose deadline passed well
        // before the probes stopped has exactly one send report.
        const database = await openDatabase({ dataDir });
        try {
          const reports = await rows<{ n: number; canaries: number; around: number }>(
            database.db,
            sql`select count(*) filter (where r.n <> 1)::int as n, count(*)::int as canaries,
                  count(*) filter (where c.send_at between ${new Date(restartedAt - 5000).toISOString()}::timestamptz
                                   and ${new Date(restartDone + 5000).toISOString()}::timestamptz)::int as around
                from canaries c
                cross join lateral (select count(*)::int as n from events e
                  where e.canary_id = c.id and e.type in ('sent', 'rejected', 'failed')) r
                where c.handed_out_at is not null
                  and c.deadline_at < ${new Date(endedAt - 10_000).toISOString()}::timestamptz`,
          );
          expect(reports[0]?.canaries).toBeGreaterThan(100);
          expect(reports[0]?.around).toBeGreaterThan(0);
          expect(reports[0]?.n, 'canaries without exactly one send report').toBe(0);
          const after = await rows<{ n: number }>(
            database.db,
            sql`select count(*)::int as n from events where type = 'received'
                  and at > ${new Date(restartDone).toISOString()}::timestamptz`,
          );
          expect(after[0]?.n).toBeGreaterThan(0);
        } finally {
          await database.close();
        }
      } finally {
        clearTimeout(restart);
        await server.stop();
        rmSync(dataDir, { recursive: true, force: true });
      }
    }, 300_000);
  },
);

if (!available && !requireAll) {
  describe('evaluate --accounts on Prosody', () => {
    it.skip('needs prosody and prosody-modules (mod_firewall): install them or see .ci/run', () => {});
  });
}
