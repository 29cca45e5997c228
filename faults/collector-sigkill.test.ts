/**
 * The collector killed with SIGKILL while both probes check in and upload (twice, a few
 * seconds apart), started again on the same port and database: the probes retry, and every
 * event they produced is stored exactly once, every canary they were handed has one send
 * report, no outcome is left pending or missing and no finding is made.
 */
import { afterAll, expect, it } from 'vitest';
import { type FaultNetwork, startFaultNetwork, until } from './support/network.ts';
import { describeFault, report } from './support/suite.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeFault('the collector killed with SIGKILL under load, then restarted', () => {
  let net: FaultNetwork | undefined;
  afterAll(async () => {
    await net?.stop();
  });

  it('loses nothing and stores nothing twice', async () => {
    const startedAt = Date.now();
    net = await startFaultNetwork({ name: 'collector SIGKILL ×2' });
    const running = net;
    const produced = running.produced;

    let seen = 0;
    for (let kill = 1; kill <= 2; kill++) {
      // Under load: the probes are producing and uploading (the second time, right after a restart).
      const atLeast = seen + 8;
      await until(`the probes produced ${atLeast} events`, () => produced() >= atLeast, 60_000, 50);
      seen = produced();
      running.collector.kill('SIGKILL');
      const how = await running.collector.exited();
      expect(how.signal).toBe('SIGKILL');
      await sleep(1000);
      await running.collector.start();
    }

    await running.drain(120_000);
    const a = await running.account();
    report(a, startedAt);
    expect(a.problems).toEqual([]);
    expect(a.lost).toBe(0);
    expect(a.duplicated).toBe(0);
    expect(a.produced).toBeGreaterThan(40);
    expect(a.canariesReported).toBe(a.canariesHeld);
  }, 300_000);
});
