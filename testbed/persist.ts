/**
 * Optional persistence of the testbed's state (`stateFile`): one JSON file holding the
 * Store snapshot. Loaded at start; written atomically (temp file + rename) at most every
 * `debounceMs` after a change, and synchronously on close.
 *
 * A save while the testbed runs is written in slices, giving the event loop a turn between
 * them: the state grows with the timelines (up to the history limits, store.ts), and one
 * synchronous `JSON.stringify` of it stalled everything in the process (in `npm start`, the
 * collector too) for as long as it took. Saves never overlap; the next one waits at least
 * ten times as long as the last one took, so saving stays a small share of the time.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { Store, type StoreOptions, type StoreSnapshot } from './store.ts';

export class StateFileError extends Error {
  readonly code = 'SD_ERR_TESTBED_STATE';
}

/** The store kept in `file`, or an empty one when the file does not exist yet. */
export function loadState(file: string, options: StoreOptions = {}): Store {
  if (!existsSync(file)) return new Store(options);
  try {
    return Store.fromSnapshot(JSON.parse(readFileSync(file, 'utf8')) as StoreSnapshot, options);
  } catch (err) {
    throw new StateFileError(
      `cannot read the testbed state file ${file}: ${(err as Error).message} (move it away to start empty)`,
    );
  }
}

function writeAtomically(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
}

/** Entries serialised per slice of an asynchronous save. */
const SLICE_ENTRIES = 2_000;

/** The snapshot as JSON text, in slices of at most SLICE_ENTRIES timeline entries. */
export function* snapshotSlices(snap: StoreSnapshot): Generator<string> {
  const { timelines, ...rest } = snap;
  const head = JSON.stringify(rest);
  yield `${head.slice(0, -1)},"timelines":{`;
  let firstTimeline = true;
  for (const [handle, entries] of Object.entries(timelines)) {
    yield `${firstTimeline ? '' : ','}${JSON.stringify(handle)}:[`;
    firstTimeline = false;
    for (let i = 0; i < entries.length; i += SLICE_ENTRIES) {
      const part = entries.slice(i, i + SLICE_ENTRIES).map((e) => JSON.stringify(e));
      yield `${i === 0 ? '' : ','}${part.join(',')}`;
    }
    yield ']';
  }
  yield '}}';
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class StateSaver {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private saving: Promise<void> | undefined;
  /** A change arrived while a save was running: save again after it. */
  private dirty = false;
  private lastSaveMs = 0;

  constructor(
    private readonly file: string,
    private readonly store: Store,
    private readonly log: Logger,
    private readonly debounceMs = 250,
  ) {
    store.onChange = () => this.schedule();
    // Write once at start, so a fresh testbed leaves its (empty) state file behind.
    this.saveNow();
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.saving) {
      this.dirty = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.saving = this.saveInSlices().finally(() => {
          this.saving = undefined;
          if (this.dirty) {
            this.dirty = false;
            this.schedule();
          }
        });
      },
      Math.max(this.debounceMs, 10 * this.lastSaveMs),
    );
    this.timer.unref();
  }

  private async saveInSlices(): Promise<void> {
    const started = performance.now();
    // Not the temp file of the synchronous write (close() may run during this one); saves do
    // not overlap, so one name is enough, and a crash leaves at most this one file behind.
    const tmp = `${this.file}.saving.tmp`;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      const handle = await open(tmp, 'w', 0o600);
      try {
        for (const slice of snapshotSlices(this.store.snapshot())) {
          await handle.write(slice);
          await turn();
          if (this.closed) break;
        }
      } finally {
        await handle.close();
      }
      // close() wrote the final state meanwhile: this one is older.
      if (this.closed) await rm(tmp, { force: true });
      else await rename(tmp, this.file);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      this.log.error({ err, file: this.file }, 'cannot save the testbed state');
    }
    this.lastSaveMs = performance.now() - started;
  }

  private saveNow(): void {
    try {
      writeAtomically(this.file, JSON.stringify(this.store.snapshot()));
    } catch (err) {
      this.log.error({ err, file: this.file }, 'cannot save the testbed state');
    }
  }

  /** Final write (synchronous); no more writes after it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.store.onChange = undefined;
    this.saveNow();
  }
}
