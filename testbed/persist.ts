/**
 * Optional persistence of the testbed's state (`stateFile`): one JSON file holding the
 * Store snapshot. Loaded at start; written atomically (temp file + rename) at most every
 * `debounceMs` after a change, and once more on close.
 *
 * Every save after the first (at start, synchronous) is written in slices, giving the event
 * loop a turn between them: the state grows with the timelines (up to the history limits, store.ts), and one
 * synchronous `JSON.stringify` of it stalled everything in the process (in `npm start`, the
 * collector too) for as long as it took. Saves never overlap; the next one waits at least
 * ten times as long as the last one took, so saving stays a small share of the time.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import { Store, type StoreOptions, type StoreSnapshot } from './store.ts';

export class StateFileError extends Error {
  readonly code = 'SD_ERR_TESTBED_STATE';
}

/**
 * The largest state file read: about the longest string Node can hold. The history limits
 * (store.ts: 6 hours, at most 50,000 entries per account) keep a demo's file far below it
 * (a day of the demo's traffic was 118 MB before those limits).
 */
export const MAX_STATE_BYTES = 512 * 1024 * 1024 - 64;

const Handle = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.@-]+$' });
const Id = Type.String({ minLength: 1, maxLength: 64 });
const Instant = Type.String({ maxLength: 40 });
const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/** What a state file must hold before the store trusts it (store.ts StoreSnapshot; the API's bounds). */
const SnapshotSchema = Type.Object({
  version: Type.Literal(1),
  accounts: Type.Array(
    Type.Object({
      handle: Handle,
      region: Type.String({ pattern: '^[A-Z]{2}$' }),
      // scrypt: a 16-byte salt and a 32-byte hash, base64
      salt: Type.String({ pattern: '^[A-Za-z0-9+/]{22}==$' }),
      hash: Type.String({ pattern: '^[A-Za-z0-9+/]{43}=$' }),
    }),
  ),
  // SHA-256 of a token, base64url (auth.ts tokenKey)
  tokens: Type.Array(Type.Tuple([Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }), Handle])),
  conversations: Type.Array(
    Type.Object({
      id: Id,
      kind: Type.Union([Type.Literal('direct'), Type.Literal('group')]),
      members: Type.Array(Handle, { minItems: 1, maxItems: 1000 }),
      title: Type.Optional(Type.String({ maxLength: 200 })),
    }),
  ),
  timelines: Type.Record(
    Type.String(),
    Type.Array(
      Type.Object({
        seq: Count,
        kind: Type.Union([Type.Literal('own'), Type.Literal('delivered')]),
        message: Type.Object({
          id: Id,
          conversation: Id,
          from: Handle,
          // a policy's notice or replacement may lengthen what was sent (at most 10,000 characters)
          text: Type.String({ maxLength: 100_000 }),
          at: Instant,
          delivered_at: Instant,
        }),
      }),
    ),
  ),
  lastSeq: Type.Optional(Type.Record(Type.String(), Count)),
  nextConversation: Count,
  nextMessage: Count,
});

/** The first problem of a parsed state file, or null when the store can trust it. */
function snapshotProblem(value: unknown): string | null {
  if (!Value.Check(SnapshotSchema, value)) {
    const [e] = Value.Errors(SnapshotSchema, value);
    return `${e?.instancePath || '(top)'}: ${e?.message ?? 'not a testbed state'}`.slice(0, 300);
  }
  const snap = value as StoreSnapshot;
  const handles = new Set(snap.accounts.map((a) => a.handle));
  if (handles.size !== snap.accounts.length) return 'an account is listed twice';
  const unknown = (h: string) => !handles.has(h);
  const strangers = [
    ...snap.tokens.map(([, h]) => h),
    ...snap.conversations.flatMap((c) => c.members),
    ...Object.keys(snap.timelines),
  ].filter(unknown);
  if (strangers.length > 0)
    return `names an account it does not hold: ${JSON.stringify(strangers[0]).slice(0, 80)}`;
  const direct = snap.conversations.find((c) => c.kind === 'direct' && c.members.length !== 2);
  if (direct) return `direct conversation ${JSON.stringify(direct.id)} does not have two members`;
  return null;
}

/**
 * The store kept in `file`, or an empty one when the file does not exist yet. A file that is too
 * large, not JSON, or not a testbed state (its shape, bounds and references checked) is refused
 * with a StateFileError naming it; the file is left as it is.
 */
export function loadState(file: string, options: StoreOptions = {}): Store {
  if (!existsSync(file)) return new Store(options);
  const refuse = (why: string) =>
    new StateFileError(`cannot read the testbed state file ${file}: ${why} (move it away to start empty)`);
  let parsed: unknown;
  try {
    const size = statSync(file).size;
    if (size > MAX_STATE_BYTES) throw new Error(`${size} bytes, more than ${MAX_STATE_BYTES}`);
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw refuse(String((err as Error).message).slice(0, 300));
  }
  return parseState(parsed, options, refuse);
}

/** A store from a parsed state file, or the error `refuse` makes of the first problem. */
export function parseState(
  parsed: unknown,
  options: StoreOptions,
  refuse: (why: string) => Error = (why) => new StateFileError(why),
): Store {
  const problem = snapshotProblem(parsed);
  if (problem) throw refuse(problem);
  return Store.fromSnapshot(parsed as StoreSnapshot, options);
}

function writeAtomically(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
}

/** Entries serialised per slice of an asynchronous save, at most. */
const SLICE_ENTRIES = 2_000;
/** Characters per slice, at most (a slice ends after the entry that reaches it). */
const SLICE_CHARS = 1 << 20;

/**
 * The snapshot as JSON text, in slices of at most SLICE_ENTRIES timeline entries and about
 * SLICE_CHARS characters (entries hold texts of up to 100,000 characters).
 */
export function* snapshotSlices(snap: StoreSnapshot): Generator<string> {
  const { timelines, ...rest } = snap;
  const head = JSON.stringify(rest);
  yield `${head.slice(0, -1)},"timelines":{`;
  let firstTimeline = true;
  for (const [handle, entries] of Object.entries(timelines)) {
    yield `${firstTimeline ? '' : ','}${JSON.stringify(handle)}:[`;
    firstTimeline = false;
    let part: string[] = [];
    let chars = 0;
    for (const [i, e] of entries.entries()) {
      const text = JSON.stringify(e);
      part.push(text);
      chars += text.length;
      if (part.length >= SLICE_ENTRIES || chars >= SLICE_CHARS || i === entries.length - 1) {
        yield `${i + 1 === part.length ? '' : ','}${part.join(',')}`;
        part = [];
        chars = 0;
      }
    }
    yield ']';
  }
  yield '}}';
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class StateSaver {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** close()'s final write, which a second close() waits for too. */
  private closing: Promise<void> | undefined;
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

  /** One save in slices; `final`: close()'s, which a close does not cut short. */
  private async saveInSlices(final = false): Promise<void> {
    const started = performance.now();
    // Not the temp file of the synchronous write at start; saves do not overlap (close() waits
    // for the one running), so one name is enough, and a crash leaves at most this one behind.
    const tmp = `${this.file}.saving.tmp`;
    const cut = () => this.closed && !final;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      const handle = await open(tmp, 'w', 0o600);
      try {
        for (const slice of snapshotSlices(this.store.snapshot())) {
          await handle.write(slice);
          await turn();
          if (cut()) break;
        }
      } finally {
        await handle.close();
      }
      // closed meanwhile: close() writes the final state after this one
      if (cut()) await rm(tmp, { force: true });
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

  /**
   * The final write, in slices like the others (a synchronous one of a 33-MB state stalled the
   * process for 430 ms as the evaluate network stopped); no more writes after it. A save
   * running is cut short at its next slice first. Every call resolves once the final write is
   * done.
   */
  close(): Promise<void> {
    this.closing ??= this.finish();
    return this.closing;
  }

  private async finish(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.store.onChange = undefined;
    await this.saving;
    await this.saveInSlices(true);
  }
}
