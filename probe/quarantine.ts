/**
 * Accounts the probe has taken out of service after a ban, a warning or rate
 * limiting: no canary is sent through them until the quarantine ends. Kept in
 * `<data>/quarantine.json` so a restart does not put a banned account back to work.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FailureCode } from '../protocol/index.ts';
import { atomicWriteFile } from './fsutil.ts';

export interface QuarantineEntry {
  /** Probe clock, epoch ms. */
  until: number;
  since: number;
  reason: FailureCode;
}

export class QuarantineBook {
  private entries = new Map<string, QuarantineEntry>();
  private readonly path: string;

  private constructor(dataDir: string) {
    this.path = join(dataDir, 'quarantine.json');
  }

  static async open(dataDir: string): Promise<QuarantineBook> {
    const book = new QuarantineBook(dataDir);
    try {
      const raw = JSON.parse(await readFile(book.path, 'utf8')) as Record<string, QuarantineEntry>;
      for (const [k, v] of Object.entries(raw)) book.entries.set(k, v);
    } catch {
      // none yet
    }
    return book;
  }

  static key(platform: string, handle: string): string {
    return `${platform}/${handle}`;
  }

  /** The active quarantine of an account, if any. */
  get(key: string, now = Date.now()): QuarantineEntry | undefined {
    const e = this.entries.get(key);
    return e && e.until > now ? e : undefined;
  }

  async put(
    key: string,
    reason: FailureCode,
    durationMs: number,
    now = Date.now(),
  ): Promise<QuarantineEntry> {
    const prev = this.get(key, now);
    const e: QuarantineEntry = {
      since: prev?.since ?? now,
      until: Math.max(prev?.until ?? 0, now + durationMs),
      reason,
    };
    this.entries.set(key, e);
    await this.save();
    return e;
  }

  private async save(): Promise<void> {
    await atomicWriteFile(this.path, `${JSON.stringify(Object.fromEntries(this.entries), null, 2)}\n`);
  }
}
