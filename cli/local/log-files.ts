/**
 * The local network's log files (`logs/collector.log`, `logs/testbed.log`, each probe's
 * `probe.log`), capped. A network left running (`npm start`) logs every probe request: about
 * 10 MB an hour for the collector alone, for as long as it runs. When a file passes
 * `maxBytes` it becomes `<name>.1` (replacing the previous one) and a new file starts, so a
 * log takes at most about twice `maxBytes` on disk and the newest output is always kept.
 */
import { renameSync, statSync } from 'node:fs';
import { pino } from 'pino';

/** Default size at which a log file is moved aside (20 MiB). */
export const LOG_FILE_MAX_BYTES = 20 * 1024 * 1024;

export interface LogFileCap {
  /** Size at which the file is moved aside (default LOG_FILE_MAX_BYTES). */
  maxBytes?: number;
  /** How often the size is looked at (default 30 s). */
  checkEveryMs?: number;
}

/** Moves `path` to `path.1` (replacing it); false when there was nothing to move or it failed. */
export function moveAside(path: string): boolean {
  try {
    renameSync(path, `${path}.1`);
    return true;
  } catch {
    return false;
  }
}

/** A pino file destination (asynchronous, as before) whose file is moved aside past `maxBytes`. */
export function cappedLogDestination(
  path: string,
  cap: LogFileCap = {},
): ReturnType<typeof pino.destination> {
  const dest = pino.destination({ dest: path, sync: false, mkdir: true });
  const maxBytes = cap.maxBytes ?? LOG_FILE_MAX_BYTES;
  const timer = setInterval(() => {
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      return;
    }
    // Lines still buffered go to whichever file is open when they are flushed: both are kept.
    if (size > maxBytes && moveAside(path)) dest.reopen();
  }, cap.checkEveryMs ?? 30_000);
  timer.unref();
  dest.once('close', () => clearInterval(timer));
  return dest;
}
