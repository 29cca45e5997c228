/**
 * Nothing lost, nothing twice: probes run as separate processes (`silentdrop probe`),
 * the collector becomes unreachable while they send and receive canaries, so events
 * pile up in their outboxes; then both probes are killed with SIGKILL, the collector
 * comes back, the probes are restarted on the same data folders, and every event is
 * found in Postgres exactly once — by event id, by canary (one send report each) and by
 * canary and recipient (one receipt each), matching what the testbed delivered.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { type LocalNetwork, startLocalNetwork } from '../cli/local/network.ts';
import { rows } from '../collector/db/open.ts';
import { readOutbox, unacked } from './support/journal.ts';
import { type CuttableProxy, startProxy } from './support/proxy.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(250);
  }
}

describe('a probe killed with SIGKILL while its outbox holds events', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sd-e2e-sigkill-'));
  let net: LocalNetwork | undefined;
  let proxy: CuttableProxy | undefined;

  afterAll(async () => {
    await net?.stop();
    await proxy?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('restarts and every event reaches the database exactly once', async () => {
    net = await startLocalNetwork({
      dataDir,
      policy: { regions: ['CN', 'US'] },
      termSets: [['图书馆'], ['自行车']],
      regions: { CN: 1, US: 1 },
      probeMode: 'process',
      // Three rounds, a second apart, all handed out at the first check-in after they are planned.
      cadence: '* * * * * *',
      deadlineSeconds: 120,
      campaign: {
        name: 'sigkill',
        startsAt: (now) => new Date(now.getTime() + 3000),
        endsAt: (now) => new Date(now.getTime() + 5500),
      },
      collector: { checkinIntervalMs: 15_000, sweepIntervalMs: 250 },
      probeCheckinCron: '* * * * * *',
      testbed: { seed: 3, rateLimit: false },
      probeCollectorUrl: async (url) => {
        proxy = await startProxy(url);
        return proxy.url;
      },
      env: {},
    });
    const running = net;
    const { db } = running.collector.database;
    const dirs = [...running.probes.values()].map((p) => p.dir);
    const planned = async () =>
      (await running.admin.campaigns()).find((c) => c.id === running.campaign.id)?.canaries ?? 0;

    // 1. Every canary handed out, then the collector cut off.
    await until(
      'every canary is handed out',
      async () => {
        const n = await planned();
        const held = dirs.reduce((sum, d) => sum + readOutbox(d).canaries.size, 0);
        return n > 0 && held === n;
      },
      40_000,
    );
    proxy!.cut();
    const canaryCount = await planned();

    // 2. The probes send and receive while the collector is unreachable: events pile up.
    // Two accounts: each canary has one recipient, so one send report and one receipt each.
    await until(
      'the outboxes hold a send report and a receipt for every canary',
      () => {
        const evs = dirs.flatMap((d) => [...readOutbox(d).events.values()]);
        return (
          evs.filter((e) => e.type !== 'received').length >= canaryCount &&
          evs.filter((e) => e.type === 'received').length >= canaryCount
        );
      },
      60_000,
    );

    // 3. SIGKILL both probes; what they held is on disk, partly unacknowledged.
    const before = dirs.map((d) => readOutbox(d));
    const pending = before.flatMap(unacked);
    expect(pending.length, 'events waiting in the outboxes at the kill').toBeGreaterThan(0);
    for (const p of running.probes.values()) p.kill('SIGKILL');
    for (const p of running.probes.values()) await p.exited;

    // 4. Collector back, probes restarted on the same data folders (same identities).
    proxy!.restore();
    const ids = { ...running.probeIds };
    for (const region of Object.keys(ids)) await running.restartProbe(region);
    const allEventIds = new Set(before.flatMap((v) => [...v.events.keys()]));
    await until(
      'every event is stored',
      async () => {
        const [r] = await rows<{ n: number }>(db, sql`select count(*)::int as n from events`);
        return (r?.n ?? 0) >= allEventIds.size && dirs.every((d) => unacked(readOutbox(d)).length === 0);
      },
      60_000,
    );

    // 5. Exactly once: by event id, by canary, by canary and recipient.
    const stored = await rows<{ event_id: string; type: string; canary: string | null; account: string }>(
      db,
      sql`select e.event_id, e.type, coalesce(e.canary_id, c.id)::text as canary, a.handle as account
          from events e join accounts a on a.id = e.account_id
          left join canaries c on c.nonce = e.nonce`,
    );
    const storedIds = new Set(stored.map((e) => e.event_id));
    expect(stored.length).toBe(storedIds.size);
    expect([...allEventIds].filter((id) => !storedIds.has(id))).toEqual([]);
    expect(pending.every((id) => storedIds.has(id))).toBe(true);

    const canaries = await rows<{ id: string }>(
      db,
      sql`select id::text from canaries where campaign_id = ${running.campaign.id}::uuid`,
    );
    expect(canaries.length).toBe(canaryCount);
    const perCanary = new Map<string, { reports: number; receipts: Map<string, number> }>();
    for (const c of canaries) perCanary.set(c.id, { reports: 0, receipts: new Map() });
    for (const e of stored) {
      const entry = e.canary ? perCanary.get(e.canary) : undefined;
      if (!entry) continue;
      if (e.type === 'received') entry.receipts.set(e.account, (entry.receipts.get(e.account) ?? 0) + 1);
      else entry.reports++;
    }
    const problems: string[] = [];
    for (const [id, c] of perCanary) {
      if (c.reports !== 1) problems.push(`canary ${id}: ${c.reports} send reports`);
      if (c.receipts.size !== 1 || [...c.receipts.values()].some((n) => n !== 1)) {
        problems.push(`canary ${id}: receipts ${JSON.stringify([...c.receipts])}`);
      }
    }
    expect(problems).toEqual([]);

    // Same probes as before the kill: no second enrollment.
    expect((await running.admin.probes()).map((p) => p.id).sort()).toEqual(Object.values(ids).sort());
    // And the outcomes agree: every canary reached its one recipient.
    const outcomes = await rows<{ status: string; n: number }>(
      db,
      sql`select o.status, count(*)::int as n from outcomes o join canaries c on c.id = o.canary_id
          where c.campaign_id = ${running.campaign.id}::uuid group by o.status`,
    );
    expect(outcomes).toEqual([{ status: 'delivered', n: canaryCount }]);
  }, 240_000);
});
