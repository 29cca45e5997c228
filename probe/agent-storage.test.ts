/**
 * The agent on a full data folder (a real ENOSPC from a small tmpfs), against a collector
 * stand-in that keeps handing out canaries whatever the probe says (as an older collector
 * would): hand-outs the journal refuses wait in memory, nothing is sent while full, the
 * check-in and status.json say `full`, and once space returns every canary is sent exactly
 * once. Skips (with the reason in the suite name) where a tmpfs cannot be mounted, unless
 * SILENTDROP_REQUIRE_ALL=1.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CanaryAssignment } from '../protocol/index.ts';
import { type ProbeHandle, type ProbeStatusFile, STATUS_FILE, startProbe } from './agent.ts';
import { parseConfig } from './config.ts';
import { type FakeCollector, startFakeCollector } from './testing/fake-collector.ts';
import { drain, fillUp, mountTmpfs, unmountTmpfs, whyNoTmpfs } from './testing/tmpfs.ts';

const why = whyNoTmpfs();
const required = process.env.SILENTDROP_REQUIRE_ALL === '1';
const logger = pino({ level: 'silent' });

it.runIf(required)('can mount a tmpfs when SILENTDROP_REQUIRE_ALL=1', () => {
  expect(why, 'run as root on a machine where `mount -t tmpfs` works').toBeUndefined();
});

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(why !== undefined)(
  `probe agent on a full data folder${why ? ` (skipped: ${why})` : ''}`,
  () => {
    let dir: string;
    let fc: FakeCollector | undefined;
    let probe: ProbeHandle | undefined;
    const network = `agent-full-${randomUUID()}`;

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'sd-agent-full-'));
      mountTmpfs(dir, '512k');
    });
    afterEach(async () => {
      await probe?.stop();
      await fc?.close();
      unmountTmpfs(dir);
      await rm(dir, { recursive: true, force: true });
    });

    const config = () =>
      parseConfig(
        `
collector_url: ${fc!.url}
enrollment_token: test-enrollment-token-0001
data_dir: ${dir}
country: US
asn: 64500
checkin_cron: "0 0 1 1 *"
pacing: { min_ms: 0, max_ms: 0 }
accounts:
  - platform: example
    handle: ann
    region: US
    credentials: { password: pw-ann }
    settings:
      network: ${network}
      conversations: [{ id: g1, kind: group, members: [ann, li] }]
  - platform: example
    handle: li
    region: CN
    credentials: { password: pw-li }
    settings: { network: ${network} }
`,
        {},
      );

    const canary = (): CanaryAssignment => {
      const nonce = `sd${randomUUID().replace(/-/g, '').slice(0, 12)}`;
      return {
        canary_id: randomUUID(),
        campaign_id: '00000000-0000-4000-8000-00000000cafe',
        platform: 'example',
        sender: 'ann',
        conversation: 'g1',
        text: `test message ${nonce} ${'padding '.repeat(40)}`,
        nonce,
        send_at: new Date(Date.now() + 200).toISOString(),
        deadline_at: new Date(Date.now() + 60_000).toISOString(),
      };
    };

    it('defers hand-outs, sends nothing while full, says so, and sends each canary once after', async () => {
      fc = await startFakeCollector();
      probe = await startProbe(config(), {
        logger,
        backoff: { baseMs: 20, maxMs: 100 },
        storageRetryMs: 200,
      });
      const p = probe;
      const filler = await fillUp(dir);

      // Hand out canaries until the journal refuses one (the first may fit in its last page).
      const handed: CanaryAssignment[] = [];
      for (let i = 0; i < 40 && p.status().storage.state === 'ok'; i++) {
        const c = canary();
        handed.push(c);
        fc.handOut.push(c);
        await p.checkin();
      }
      expect(p.status().storage).toMatchObject({ state: 'full', code: 'ENOSPC' });
      const sentBefore = fc.stored.filter((e) => e.type === 'sent').length;

      // Still handed out while full: taken only in memory; the check-in says `full`.
      const late = canary();
      handed.push(late);
      fc.handOut.push(late);
      await p.checkin();
      expect(fc.checkins.at(-1)?.storage).toMatchObject({ state: 'full', code: 'ENOSPC' });
      expect(p.status().deferredCanaries).toBeGreaterThanOrEqual(1);
      await new Promise((r) => setTimeout(r, 1000));
      expect(fc.stored.filter((e) => e.type === 'sent').length).toBe(sentBefore);

      // Space returns: the probe finds it, takes the deferred canaries, sends every one once.
      await drain(filler.path);
      await until('the probe finds space', () => p.status().storage.state === 'ok');
      await until('every canary handed out is reported', () =>
        handed.every((c) => fc!.stored.some((e) => e.canary_id === c.canary_id && e.type !== 'received')),
      );
      for (const c of handed) {
        const reports = fc.stored.filter((e) => e.canary_id === c.canary_id && e.type !== 'received');
        expect(reports.map((e) => e.type)).toEqual(['sent']);
      }
      expect(p.status().deferredCanaries).toBe(0);
      await until('status.json says ok', async () => {
        const s = JSON.parse(await readFile(join(dir, STATUS_FILE), 'utf8')) as ProbeStatusFile;
        return s.storage?.state === 'ok';
      });
      await p.checkin();
      expect(fc.checkins.at(-1)?.storage).toEqual({ state: 'ok' });
    }, 60_000);
  },
);
