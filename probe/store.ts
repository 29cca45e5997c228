/**
 * The probe's durable state on disk: one journal (`journal.log`) shared by the outbox
 * and the canary ledger, so that "this canary is done" and "this event must be
 * uploaded" are one fsync'd record. Compacts the journal on open and when acknowledged
 * records pile up.
 *
 *   <dir>/journal.log                 checksummed records (see journal.ts)
 *   <dir>/journal.log.corrupt.ndjson  torn/corrupt records set aside after a crash
 *   <dir>/dead-letter.ndjson          events the collector refused, for the operator
 *
 * Every journal write goes through the storage gate (storage.ts): one refused for lack of
 * space turns the store `full` until a check finds space and the held events are journaled.
 */
import { join } from 'node:path';
import { ensurePrivateDir } from './fsutil.ts';
import { Journal } from './journal.ts';
import { CanaryLedger } from './ledger.ts';
import { Outbox, type OutboxOptions } from './outbox.ts';
import { StorageGate, storageFullCode } from './storage.ts';

export interface ProbeStore {
  outbox: Outbox;
  ledger: CanaryLedger;
  /** Torn/corrupt records set aside when the journal was opened. */
  setAside: number;
  deadLetterPath: string;
  /** Whether the data folder takes writes. */
  storage: StorageGate;
  close(): Promise<void>;
}

export interface OpenStoreOptions extends Omit<OutboxOptions, 'deadLetterPath'> {
  /** Compact when this many records were appended since the last compaction (and most are dead). */
  compactAfter?: number;
  now?: () => number;
  /** How often a full data folder is checked for space (default 5 s). */
  storageRetryMs?: number;
}

export async function openProbeStore(dir: string, opts: OpenStoreOptions): Promise<ProbeStore> {
  await ensurePrivateDir(dir);
  const deadLetterPath = join(dir, 'dead-letter.ndjson');
  const { journal, records, setAside } = await Journal.open(join(dir, 'journal.log'), opts.logger);
  const storage = new StorageGate({
    dir,
    logger: opts.logger,
    ...(opts.storageRetryMs ? { retryMs: opts.storageRetryMs } : {}),
  });
  const append = async (recs: Parameters<Journal['append']>[0]) => {
    try {
      await journal.append(recs);
    } catch (err) {
      storage.noteFailure(err);
      throw err;
    }
  };
  const ledger = new CanaryLedger(append, opts.now);
  const outbox = new Outbox(append, { ...opts, deadLetterPath });
  outbox.storage = storage;
  storage.recover = () => outbox.journalHeld();
  for (const rec of records) {
    outbox.replay(rec);
    ledger.replay(rec);
  }
  await outbox.loadDeadLetters();
  outbox.onEventAdded = (ev) => ledger.noteEvent(ev);

  const snapshot = () => [...ledger.snapshot(), ...outbox.snapshot()];
  // Compact now: drops acknowledged events and stale ledger entries. A disk without room for
  // a second copy keeps the log as it is: the probe still starts, and appends decide whether
  // the folder is full (a failed compaction alone does not stop the probe taking canaries).
  await journal.rewrite(snapshot()).catch((err: unknown) => {
    if (!storageFullCode(err)) throw err;
    opts.logger.warn({ err }, 'journal not compacted: no room for a new copy');
  });

  const compactAfter = opts.compactAfter ?? 2000;
  let compacting = false;
  outbox.onAcked = () => {
    const live = outbox.backlog() + ledger.size;
    if (compacting || journal.appendedSinceRewrite < compactAfter || journal.appendedSinceRewrite < live)
      return;
    compacting = true;
    journal
      .rewrite(snapshot())
      .catch((err) => opts.logger.error({ err }, 'journal compaction failed; the log keeps growing'))
      .finally(() => {
        compacting = false;
      });
  };
  opts.logger.info(
    { backlog: outbox.backlog(), dead_letters: outbox.deadLetters(), set_aside: setAside, dir },
    'outbox opened',
  );

  return {
    outbox,
    ledger,
    setAside,
    deadLetterPath,
    storage,
    async close() {
      storage.stop();
      outbox.releaseHeld();
      await outbox.stop();
      await journal.close();
    },
  };
}
