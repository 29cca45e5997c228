/**
 * Fault case (issue 15): the CN probe's data folder fills up mid-run. Its folder is a 1 MiB
 * tmpfs; while the campaign runs, a filler file takes every byte left, so the probe's next
 * journal write gets a real ENOSPC from the kernel. The probe must stop taking canaries it
 * cannot journal, say so at check-in (the collector logs it and hands it nothing) and in
 * `probe status`, lose nothing it journaled, and recover by itself when the filler is
 * removed. Ends with the closing account: every event produced stored exactly once, every
 * canary handed out with exactly one send report.
 *
 * Needs root and `mount`: skips with the reason in the suite name otherwise, and fails
 * instead under SILENTDROP_REQUIRE_ALL=1.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatLocalStatus, readLocalStatus } from '../probe/status.ts';
import { drain, fillUp, mountTmpfs, unmountTmpfs, whyNoTmpfs } from '../probe/testing/tmpfs.ts';
import {
  account,
  type CaseNetwork,
  collectorLog,
  say,
  settle,
  startCase,
  until,
} from './support/probe-cases.ts';

const why = whyNoTmpfs();
const required = process.env.SILENTDROP_REQUIRE_ALL === '1';

it.runIf(required)('can mount a tmpfs when SILENTDROP_REQUIRE_ALL=1', () => {
  expect(why, 'run as root on a machine where `mount -t tmpfs` works').toBeUndefined();
});

describe.skipIf(why !== undefined)(
  `fault: the probe's data folder full${why ? ` (skipped: ${why})` : ''}`,
  () => {
    let c: CaseNetwork | undefined;
    const mounted = new Set<string>();

    afterAll(async () => {
      try {
        await c?.stop();
      } finally {
        for (const m of mounted) unmountTmpfs(m);
      }
    });

    it('stops taking canaries, says so, loses nothing and recovers by itself', async () => {
      c = await startCase({
        name: 'disk-full',
        campaignSeconds: 40,
        prepare: (region, dir) => {
          if (region !== 'CN') return;
          mountTmpfs(dir, '1m');
          mounted.add(dir);
        },
        release: (_region, dir) => {
          if (mounted.delete(dir)) unmountTmpfs(dir);
        },
      });
      const { net, watch } = c;
      const cn = c.dirs.get('CN')!;
      const cnId = net.probeIds.CN!;

      // 1. The CN probe works normally: canaries handed out, sent and acknowledged.
      await until(
        'the CN probe has sent canaries',
        () => [...watch.produced.values()].some((e) => e.region === 'CN' && e.type === 'sent'),
        60_000,
      );

      // 2. Its folder fills up. The next journal write fails; the check-in after it says `full`.
      const filler = await fillUp(cn);
      const fullAt = Date.now();
      const fullCheckins = () =>
        collectorLog(c!, (l) => l.msg === 'probe data folder full; no canaries' && l.probe === cnId);
      await until(
        'the CN probe reports its folder full at check-in',
        () => fullCheckins().length > 0,
        30_000,
      );
      const first = fullCheckins()[0] as { storage?: { state?: string; code?: string } };
      expect(first.storage).toMatchObject({ state: 'full', code: 'ENOSPC' });

      // `probe status` says so (from free space when the probe could not rewrite status.json).
      const full = formatLocalStatus(await readLocalStatus(cn));
      expect(full).toMatch(/^storage: +FULL/m);

      // 3. While full it takes no canary: nothing new in its journal's hand-outs (the collector
      // hands it none; one it was handed but could not journal waits in memory).
      watch.read();
      const takenBefore = new Set(watch.canaries.get('CN'));
      await new Promise((r) => setTimeout(r, 8000));
      watch.read();
      expect([...watch.canaries.get('CN')!].filter((id) => !takenBefore.has(id))).toEqual([]);
      expect(fullCheckins().length).toBeGreaterThan(3);

      // 4. Space returns: the probe finds it by itself, takes canaries again and sends them.
      await drain(filler.path);
      const drainedAt = Date.now();
      await until(
        'the CN probe takes canaries again',
        () => {
          watch.read();
          return [...watch.canaries.get('CN')!].some((id) => !takenBefore.has(id));
        },
        30_000,
      );
      const recoveredMs = Date.now() - drainedAt;
      await until(
        "the CN probe's status file says its folder takes writes",
        async () => (await readLocalStatus(cn)).running?.storage?.state === 'ok',
        30_000,
      );
      expect(formatLocalStatus(await readLocalStatus(cn))).toMatch(/^storage: +ok/m);
      await until(
        'the CN probe sends a canary it took after the recovery',
        () => {
          watch.read();
          return [...watch.produced.values()].some(
            (e) => e.region === 'CN' && e.type === 'sent' && e.canary_id && !takenBefore.has(e.canary_id),
          );
        },
        60_000,
      );

      // 5. The closing account.
      await settle(c, 150_000);
      const a = await account(c, 'disk-full');
      say(
        `[fault disk-full] full for ${Math.round((drainedAt - fullAt) / 1000)} s; ` +
          `${fullCheckins().length} check-ins said full; taking canaries again ${recoveredMs} ms after space returned; ` +
          `probe log: ${join(cn, 'probe.log')} (output dropped while full, with a note saying how much)`,
      );
      expect(a.problems).toEqual([]);
      expect(a.duplicated).toBe(0);
      expect(a.lost).toBe(0);
      expect(a.produced).toBeGreaterThan(0);
      expect(a.stored).toBe(a.produced);
    }, 300_000);
  },
);
