/**
 * The probe's durable state on disk: one journal (`journal.log`) shared by the outbox
 * and the canary ledger, so that "this canary is done" and "this event must be
 * uploaded" are one fsync'd record. Compacts the journal on open and when acknowledged
 * records pile up.
 *
 *   <dir>/journal.log                 checksummed records (see journal.ts)
 *   <dir>/journal.log.corrupt.ndjson  torn/corrupt records set aside after a crash
 *   <dir>/dead-letter.ndjson          events the collector refused, for the operator
 */
import { join } from 'node:path';
import { ensurePrivateDir } from './fsutil.ts';
import { Journal } from './journal.ts';
import { CanaryLedger } from './ledger.ts';
import { Outbox, type OutboxOptions } from './outbox.ts';

export interface ProbeStore {
  outbox: Outbox;
  ledger: CanaryLedger;
  /** Torn/corrupt records set aside when the journal was opened. */
  setAside: number;
  deadLetterPath: string;
  close(): Promise<void>;
}

export interface OpenStoreOptions extends Omit<OutboxOptions, 'deadLetterPath'> {
  /** Compact when this many records were appended since the last compaction (and most are dead). */
  compactAfter?: number;
  now?: () => number;
}

export async function openProbeStore(dir: string, opts: OpenStoreOptions): Promise<ProbeStore> {
  await ensurePrivateDir(dir);
  const deadLetterPath = join(dir, 'dead-letter.ndjson');
  const { journal, records, setAside } = await Journal.open(join(dir, 'journal.log'), opts.logger);
  const append = (recs: Parameters<Journal['append']>[0]) => journal.append(recs);
  const ledger = new CanaryLedger(append, opts.now);
  const outbox = new Outbox(append, { ...opts, deadLetterPath });
  for (const rec of records) {
    outbox.replay(rec);
    ledger.replay(rec);
  }
  await outbox.loadDeadLetters();
  outbox.onEventAdded = (ev) => ledger.noteEvent(ev);

  const snapshot = () => [...ledger.snapshot(), ...outbox.snapshot()];
  // Compact now: drops acknowledged events and stale ledger entries.
  await journal.rewrite(snapshot());

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
    async close() {
      await outbox.stop();
      await journal.close();
    },
  };
}
