/**
 * The path between the probes and the collector cut for a while (60 s; 5 minutes with
 * `--long`), then restored, while the campaign goes on: the probes keep sending what they
 * were handed and keep observing, their outboxes fill, and after the cut the backlogs drain.
 * Canaries whose deadlines passed during the cut without reaching a probe have no events
 * and no outcome; what was sent has its outcome from the probes' own times (delivered, not
 * missing); no finding is made from the gap; every event is stored exactly once.
 */
import { afterAll, expect, it } from 'vitest';
import { type FaultNetwork, startFaultNetwork, until } from './support/network.ts';
import { describeFault, LONG, report } from './support/suite.ts';

const CUT_SECONDS = LONG ? 300 : 60;

describeFault(`the probe ↔ collector path cut for ${CUT_SECONDS} s, then restored`, () => {
  let net: FaultNetwork | undefined;
  afterAll(async () => {
    await net?.stop();
  });

  it('drains the backlogs, makes no finding from the gap, and loses nothing', async () => {
    const startedAt = Date.now();
    // Rounds go on through the cut and 10 s past it.
    net = await startFaultNetwork({
      name: `probe-collector cut ${CUT_SECONDS} s`,
      probeProxy: true,
      activeSeconds: CUT_SECONDS + 16,
    });
    const running = net;
    const proxy = running.probeProxy!;
    const produced = running.produced;

    await until('the probes hold canaries and produced events', () => produced() >= 6, 60_000);
    proxy.cut();
    const cutAt = Date.now();
    const acknowledged = () =>
      [...running.journals.read().seen.values()].reduce((n, v) => n + v.acked.size, 0);
    // An answer read just before the cut may still be written down: count from a second later.
    await new Promise((r) => setTimeout(r, 1000));
    const ackedAtCut = acknowledged();
    await new Promise((r) => setTimeout(r, CUT_SECONDS * 1000 - 1000));
    const backlogAtRestore = running.journals.backlog();
    expect(acknowledged(), 'nothing acknowledged through a cut path').toBe(ackedAtCut);
    expect(backlogAtRestore, 'events piled up during the cut').toBeGreaterThan(0);
    proxy.restore();
    const restoredAt = Date.now();
    await until('the backlogs drained', () => running.journals.backlog() === 0, 120_000);
    process.stdout.write(
      `probe-collector cut: ${Math.round((restoredAt - cutAt) / 1000)} s, backlog ${backlogAtRestore} events, ` +
        `drained ${Math.round((Date.now() - restoredAt) / 1000)} s after the restore\n`,
    );

    await running.drain(120_000);
    const a = await running.account();
    report(a, startedAt);
    expect(a.problems).toEqual([]);
    expect(a.lost).toBe(0);
    expect(a.duplicated).toBe(0);
    expect(a.canariesReported).toBe(a.canariesHeld);
    expect(a.neverHandedOut, 'canaries whose deadline passed during the cut').toBeGreaterThan(0);
    expect(a.findings).toEqual([]);
  }, 900_000);
});
