/**
 * Fault case (issue 15): a probe's clock is stepped by minutes mid-run, in either direction.
 * The probe processes run under libfaketime (LD_PRELOAD) with a timestamp file each that
 * libfaketime re-reads (FAKETIME_NO_CACHE), so writing `+420` to the CN probe's file moves
 * that process's wall clock (Date.now) seven minutes ahead at once; the monotonic clock is
 * left alone (FAKETIME_DONT_FAKE_MONOTONIC), as a real `date -s` or NTP step leaves it.
 * Steps: CN +7 min, then US −7 min, then CN back. Latencies must stay right (the offset
 * is re-estimated), signed requests must not be refused as stale for long, and the
 * closing account must find every event stored once and one send report per canary.
 *
 * Needs libfaketime (Debian package `faketime`): skips with the reason in the suite name
 * otherwise, and fails instead under SILENTDROP_REQUIRE_ALL=1.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  account,
  type CaseNetwork,
  collectorLog,
  outcomes,
  type Region,
  say,
  settle,
  startCase,
  until,
} from './support/probe-cases.ts';

const LIBFAKETIME = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
].find((p) => existsSync(p));
const required = process.env.SILENTDROP_REQUIRE_ALL === '1';
const why = LIBFAKETIME ? undefined : 'libfaketime not installed (apt-get install faketime)';
const STEP_S = 420;

it.runIf(required)('finds libfaketime when SILENTDROP_REQUIRE_ALL=1', () => {
  expect(why, 'install the Debian package faketime').toBeUndefined();
});

describe.skipIf(why !== undefined)(
  `fault: a probe's clock stepped mid-run${why ? ` (skipped: ${why})` : ''}`,
  () => {
    let c: CaseNetwork | undefined;
    const timeDir = mkdtempSync(join(tmpdir(), 'sd-faketime-'));
    const timeFile = (r: Region) => join(timeDir, `${r}.faketime`);
    const setClock = (r: Region, seconds: number) =>
      writeFileSync(timeFile(r), `${seconds >= 0 ? '+' : ''}${seconds}\n`);

    afterAll(async () => {
      await c?.stop();
      rmSync(timeDir, { recursive: true, force: true });
    });

    it('keeps latencies right and refuses nothing as stale for long, stepped either way', async () => {
      const env = (r: Region): NodeJS.ProcessEnv => {
        setClock(r, 0);
        return {
          LD_PRELOAD: LIBFAKETIME,
          FAKETIME_TIMESTAMP_FILE: timeFile(r),
          FAKETIME_NO_CACHE: '1',
          FAKETIME_DONT_FAKE_MONOTONIC: '1',
        };
      };
      c = await startCase({
        name: 'clock-step',
        campaignSeconds: 36,
        probeEnv: { CN: env('CN'), US: env('US') },
      });
      const { net, watch } = c;
      const stale = () => collectorLog(c!, (l) => l.code === 'SD_ERR_AUTH_STALE');

      await until(
        'both probes have sent canaries',
        () =>
          ['CN', 'US'].every((r) =>
            [...watch.produced.values()].some((e) => e.region === r && e.type === 'sent'),
          ),
        60_000,
      );

      /** Steps a probe's clock; waits until the collector has its new offset; returns how long that took. */
      const step = async (r: Region, seconds: number, expectedOffsetMs: number) => {
        const id = net.probeIds[r]!;
        setClock(r, seconds);
        const at = Date.now();
        await until(
          `the ${r} probe reports an offset near ${expectedOffsetMs} ms after a check-in`,
          async () => {
            const p = (await net.admin.probes()).find((x) => x.id === id);
            return (
              p?.clock_offset_ms != null &&
              Math.abs(p.clock_offset_ms - expectedOffsetMs) < 3000 &&
              Date.parse(p.last_checkin_at ?? '') > at
            );
          },
          20_000,
          200,
        );
        const took = Date.now() - at;
        say(
          `[fault clock-step] ${r} stepped to ${seconds >= 0 ? '+' : ''}${seconds} s: offset re-estimated in ${took} ms`,
        );
        return took;
      };

      /**
       * The probe keeps checking in on its schedule (every second, at its own phase under half a
       * second): in 8 s the collector sees at least two fresh check-ins. A cron left
       * waiting for the slot it planned on the old clock would give none for seven minutes.
       */
      const keepsCheckingIn = async (r: Region) => {
        const seen = new Set<string>();
        const start = Date.now();
        const end = start + 8000;
        while (Date.now() < end) {
          const p = (await net.admin.probes()).find((x) => x.id === net.probeIds[r]);
          if (p?.last_checkin_at) seen.add(p.last_checkin_at);
          await new Promise((res) => setTimeout(res, 200));
        }
        const times = [...seen]
          .map((t) => Date.parse(t))
          .filter((t) => t > start)
          .sort((a, b) => a - b);
        expect(
          times.length,
          `the ${r} probe checked in at ${times.map((t) => new Date(t).toISOString()).join(', ')} in 8 s`,
        ).toBeGreaterThanOrEqual(2);
      };

      await step('CN', STEP_S, -STEP_S * 1000);
      await keepsCheckingIn('CN');
      await step('US', -STEP_S, STEP_S * 1000);
      await keepsCheckingIn('US');
      await step('CN', 0, 0);
      await keepsCheckingIn('CN');

      await settle(c, 150_000);

      // Latencies right: the testbed delivers at once, so every canary is delivered within seconds.
      const list = await outcomes(c);
      expect(list.length).toBeGreaterThan(0);
      const latencies = list.map((o) => o.latency_ms).filter((l): l is number => l !== null);
      const sorted = [...latencies].sort((a, b) => a - b);
      say(
        `[fault clock-step] ${list.length} outcomes (${[...new Set(list.map((o) => o.status))].join(', ')}); ` +
          `latency ms min ${sorted[0]} / median ${sorted[Math.floor(sorted.length / 2)]} / max ${sorted.at(-1)}; ` +
          `stale refusals ${stale().length}`,
      );
      expect(list.filter((o) => o.status !== 'delivered')).toEqual([]);
      expect(latencies.length).toBe(list.length);
      for (const l of latencies) {
        expect(l).toBeGreaterThanOrEqual(-2000);
        expect(l).toBeLessThan(15_000);
      }
      // Nothing refused as stale for long: the step is seen before the next request is signed.
      expect(stale().length).toBeLessThanOrEqual(2);

      const a = await account(c, 'clock-step');
      expect(a.problems).toEqual([]);
      // No probe stopped taking canaries after a step: every canary planned was handed out.
      expect(a.notHandedOut).toBe(0);
      expect(a.duplicated).toBe(0);
      expect(a.lost).toBe(0);
      expect(a.stored).toBe(a.produced);
    }, 300_000);
  },
);
