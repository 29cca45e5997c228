/**
 * Optional persistence of the testbed's state (`stateFile`): one JSON file holding the
 * Store snapshot. Loaded at start; written atomically (temp file + rename) at most
 * every `debounceMs` after a change, and synchronously on close.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { Store, type StoreSnapshot } from './store.ts';

export class StateFileError extends Error {
  readonly code = 'SD_ERR_TESTBED_STATE';
}

/** The store kept in `file`, or an empty one when the file does not exist yet. */
export function loadState(file: string): Store {
  if (!existsSync(file)) return new Store();
  try {
    return Store.fromSnapshot(JSON.parse(readFileSync(file, 'utf8')) as StoreSnapshot);
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

export class StateSaver {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly file: string,
    private readonly store: Store,
    private readonly log: Logger,
    private readonly debounceMs = 250,
  ) {
    store.onChange = () => this.schedule();
    // Write once at start, so a fresh testbed leaves its (empty) state file behind.
    this.save();
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.save();
    }, this.debounceMs);
    this.timer.unref();
  }

  private save(): void {
    try {
      writeAtomically(this.file, JSON.stringify(this.store.snapshot()));
    } catch (err) {
      this.log.error({ err, file: this.file }, 'cannot save the testbed state');
    }
  }

  /** Final write; no more writes after it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.store.onChange = undefined;
    this.save();
  }
}
