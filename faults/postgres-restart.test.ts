/**
 * Postgres restarted under the collector while probes upload: first a fast shutdown (open
 * transactions rolled back, sessions ended), then an immediate one (the server crashes and
 * recovers from its log on start), each while a probe has events in flight. The collector
 * process stays up through both, answers 503 while the server is away, and every event is
 * stored exactly once.
 */
import { afterAll, expect, it } from 'vitest';
import { type FaultNetwork, startFaultNetwork, until } from './support/network.ts';
import type { StopMode } from './support/postgres.ts';
import { describeFault, report } from './support/suite.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeFault('Postgres restarted (fast, then immediate shutdown) in the middle of batches', () => {
  let net: FaultNetwork | undefined;
  afterAll(async () => {
    await net?.stop();
  });

  it('keeps the collector up and stores every event exactly once', async () => {
    const startedAt = Date.now();
    net = await startFaultNetwork({ name: 'Postgres restart fast+immediate' });
    const running = net;
    const produced = running.produced;
    const pid = running.collector.pid();

    let seen = 0;
    for (const mode of ['fast', 'immediate'] satisfies StopMode[]) {
      const atLeast = seen + 8;
      // In the middle of batches: events produced and not yet acknowledged.
      await until(
        `${atLeast} events produced, some not yet acknowledged`,
        () => produced() >= atLeast && running.journals.backlog() > 0,
        60_000,
        50,
      );
      seen = produced();
      await running.postgres.stop(mode);
      await sleep(1500);
      await running.postgres.start();
    }
    expect(running.collector.running()).toBe(true);
    expect(running.collector.pid()).toBe(pid);

    await running.drain(120_000);
    const a = await running.account();
    report(a, startedAt);
    expect(a.problems).toEqual([]);
    expect(a.lost).toBe(0);
    expect(a.duplicated).toBe(0);
    expect(a.canariesReported).toBe(a.canariesHeld);
  }, 400_000);
});
