/**
 * A full data folder, for real: the store's folder is a small tmpfs that a filler file
 * fills to ENOSPC. The journal keeps every record it confirmed and no torn line; events
 * the disk refused are held, never uploaded, and journaled once space returns; a hand-out
 * and a `sending` record the disk refused are not taken. Skips (with the reason in the
 * suite name) where a tmpfs cannot be mounted, unless SILENTDROP_REQUIRE_ALL=1.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CanaryAssignment, ProbeEvent } from '../protocol/index.ts';
import { decodeRecord } from './journal.ts';
import { openProbeStore, type ProbeStore } from './store.ts';
import { sampleReceived } from './testing/sample-events.ts';
import { drain, fillUp, mountTmpfs, unmountTmpfs, whyNoTmpfs } from './testing/tmpfs.ts';

const why = whyNoTmpfs();
const required = process.env.SILENTDROP_REQUIRE_ALL === '1';
const logger = pino({ level: 'silent' });

it.runIf(required)('can mount a tmpfs when SILENTDROP_REQUIRE_ALL=1', () => {
  expect(why, 'run as root on a machine where `mount -t tmpfs` works').toBeUndefined();
});

/** Every record in the journal file; throws on a line that does not decode (torn or corrupt). */
function journalLines(dir: string) {
  const text = readFileSync(join(dir, 'journal.log'), 'utf8');
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const rec = decodeRecord(line);
    if (!rec) throw new Error(`unreadable journal line: ${line.slice(0, 80)}`);
    out.push(rec);
  }
  return out;
}

const evIds = (dir: string) =>
  journalLines(dir)
    .filter((r) => r.k === 'ev')
    .map((r) => (r.ev as ProbeEvent).event_id);

/** Event ids the journal holds without an `ack` record: what a reopened probe would upload. */
function unacked(dir: string): string[] {
  const acked = new Set(
    journalLines(dir)
      .filter((r) => r.k === 'ack')
      .flatMap((r) => r.ids as string[]),
  );
  return evIds(dir).filter((id) => !acked.has(id));
}

function assignment(): CanaryAssignment {
  const now = Date.now();
  return {
    canary_id: randomUUID(),
    campaign_id: randomUUID(),
    platform: 'example',
    sender: 'alice',
    conversation: 'g1',
    text: 'hello sd000000000001',
    nonce: 'sd000000000001',
    send_at: new Date(now).toISOString(),
    deadline_at: new Date(now + 60_000).toISOString(),
  };
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(why !== undefined)(
  `probe store on a full data folder${why ? ` (skipped: ${why})` : ''}`,
  () => {
    const mnt = mkdtempSync(join(tmpdir(), 'sd-full-'));
    const dir = join(mnt, 'outbox');
    let store: ProbeStore | undefined;
    const uploaded: string[] = [];
    let uploadsOpen = false;

    beforeAll(async () => {
      mountTmpfs(mnt, '512k');
      store = await openProbeStore(dir, {
        logger,
        storageRetryMs: 100,
        backoff: { baseMs: 20, maxMs: 100 },
        upload: async (events) => {
          if (!uploadsOpen) throw Object.assign(new Error('collector away'), { kind: 'network' });
          uploaded.push(...events.map((e) => e.event_id));
          return events.map((e, index) => ({ index, event_id: e.event_id, status: 'stored' as const }));
        },
      });
    });
    afterAll(async () => {
      await store?.close();
      unmountTmpfs(mnt);
      rmSync(mnt, { recursive: true, force: true });
    });

    it('holds what the disk refuses, loses nothing journaled, and recovers by itself', async () => {
      const s = store!;
      const before = Array.from({ length: 20 }, (_, i) => sampleReceived(i));
      for (const ev of before) await s.outbox.add(ev);

      const filler = await fillUp(mnt);
      // Appends may still fit in the journal's last page; keep adding until the disk refuses one.
      const during: ProbeEvent[] = [];
      const settled = new Map<string, boolean>();
      for (let i = 0; i < 500 && !s.storage.full; i++) {
        const ev = sampleReceived(1000 + i, { text: `x`.repeat(400) });
        during.push(ev);
        s.outbox.add(ev).then(
          () => settled.set(ev.event_id, true),
          () => settled.set(ev.event_id, false),
        );
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(s.storage.full).toBe(true);
      expect(s.storage.report()).toMatchObject({ state: 'full', code: 'ENOSPC' });
      const held = s.outbox.heldCount();
      expect(held).toBeGreaterThan(0);

      // Nothing new is taken while full: a hand-out and a `sending` record are refused and not kept.
      const a = assignment();
      await expect(s.ledger.assign(a)).rejects.toMatchObject({ code: 'ENOSPC' });
      expect(s.ledger.state(a.canary_id)).toBeUndefined();

      // What was journaled is intact: every line decodes, every confirmed event is there once.
      const onDisk = evIds(dir);
      expect(new Set(onDisk).size).toBe(onDisk.length);
      for (const ev of before) expect(onDisk).toContain(ev.event_id);
      for (const ev of during) if (settled.get(ev.event_id)) expect(onDisk).toContain(ev.event_id);

      // The collector is reachable: only journaled events go up, never a held one.
      uploadsOpen = true;
      s.outbox.start();
      await until('the journaled events are uploaded', () => onDisk.every((id) => uploaded.includes(id)));
      const heldIds = during.filter((ev) => !settled.get(ev.event_id)).map((ev) => ev.event_id);
      expect(heldIds.length).toBe(held);
      expect(uploaded.filter((id) => heldIds.includes(id))).toEqual([]);

      // Space returns: the gate finds it, journals the held events, and they are uploaded.
      await drain(filler.path);
      await until('the data folder is writable again', () => !s.storage.full);
      await until('every held event is journaled', () => during.every((ev) => settled.get(ev.event_id)));
      expect(await s.outbox.flush(5000)).toBe(true);
      const all = [...before, ...during].map((ev) => ev.event_id);
      expect([...uploaded].sort()).toEqual([...all].sort());
      // Every upload the collector answered while full is acknowledged in the journal once space
      // returned: reopened, the probe would upload nothing again.
      await until('every acknowledgement is journaled', () => unacked(dir).length === 0);
      // A hand-out is taken again.
      expect(await s.ledger.assign(a)).toBe(true);
      await s.ledger.markSending(a.canary_id);
      expect(s.ledger.state(a.canary_id)).toBe('sending');
    }, 30_000);

    it('a `sending` record the disk refuses leaves the canary waiting, not sending', async () => {
      const s = store!;
      const waiting = Array.from({ length: 100 }, assignment);
      for (const a of waiting) expect(await s.ledger.assign(a)).toBe(true);
      const filler = await fillUp(mnt);
      // The first records may fit in the journal's last page: mark more until one is refused.
      let refused: CanaryAssignment | undefined;
      for (const a of waiting) {
        const ok = await s.ledger.markSending(a.canary_id).then(
          () => true,
          (err: { code?: string }) => {
            expect(err.code).toBe('ENOSPC');
            return false;
          },
        );
        if (!ok) {
          refused = a;
          break;
        }
      }
      expect(refused, 'the disk refused a `sending` record').toBeDefined();
      expect(s.storage.full).toBe(true);
      expect(s.ledger.state(refused!.canary_id)).toBe('assigned');
      expect(journalLines(dir).some((r) => r.k === 'sending' && r.id === refused!.canary_id)).toBe(false);
      await drain(filler.path);
      await until('the data folder is writable again', () => !s.storage.full);
      await s.ledger.markSending(refused!.canary_id);
      expect(s.ledger.state(refused!.canary_id)).toBe('sending');
      expect(journalLines(dir).some((r) => r.k === 'sending' && r.id === refused!.canary_id)).toBe(true);
    }, 30_000);
  },
);
