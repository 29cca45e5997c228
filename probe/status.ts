/**
 * `silentdrop probe status`: what a probe's data folder says, read without writing and
 * without taking anything the running probe holds. The running probe rewrites
 * `status.json` whole (temp file + rename) at each check-in; the outbox backlog and dead
 * letters are counted from the journal and the dead-letter file as they are on disk now
 * (the same replay the outbox does on open, into a copy that never writes). Free space
 * in the data folder is read here too (statfs): a full folder may keep the running probe
 * from rewriting status.json, and the operator must still be told.
 */
import { readFile, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import type { ProbeStatusFile } from './agent.ts';
import { STATUS_FILE } from './agent.ts';
import { identityPath } from './identity.ts';
import { decodeRecord } from './journal.ts';
import { Outbox } from './outbox.ts';
import { CHECK_BYTES } from './storage.ts';

export interface LocalProbeStatus {
  dataDir: string;
  /** Absent when the probe has not registered yet. */
  probeId?: string;
  registeredWith?: string;
  registeredAt?: string;
  /** What the running probe last wrote; absent before its first check-in. */
  running?: ProbeStatusFile;
  /** Counted from the outbox journal now. */
  backlog: number;
  deadLetters: number;
  /** Journal lines that could not be read (torn by a write in progress, or corrupt). */
  unreadableRecords: number;
  /** Bytes this user may still write in the data folder's file system (statfs); absent when unknown. */
  freeBytes?: number;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function readLocalStatus(dataDir: string): Promise<LocalProbeStatus> {
  const out: LocalProbeStatus = { dataDir, backlog: 0, deadLetters: 0, unreadableRecords: 0 };
  const identity = await readText(identityPath(dataDir));
  if (identity !== undefined) {
    try {
      const f = JSON.parse(identity) as {
        probe_id?: unknown;
        collector_url?: unknown;
        registered_at?: unknown;
      };
      if (typeof f.probe_id === 'string') out.probeId = f.probe_id;
      if (typeof f.collector_url === 'string') out.registeredWith = f.collector_url;
      if (typeof f.registered_at === 'string') out.registeredAt = f.registered_at;
    } catch {
      // reported as "not registered"; the probe itself names the problem at start
    }
  }
  const status = await readText(join(dataDir, STATUS_FILE));
  if (status !== undefined) {
    try {
      const s = JSON.parse(status) as ProbeStatusFile;
      if (s && s.version === 1) out.running = s;
    } catch {
      // written whole by rename: unreadable only if someone else wrote it
    }
  }
  const dir = join(dataDir, 'outbox');
  const outbox = new Outbox(async () => undefined, {
    upload: async () => [],
    logger: pino({ level: 'silent' }),
    deadLetterPath: join(dir, 'dead-letter.ndjson'),
  });
  const journal = (await readText(join(dir, 'journal.log'))) ?? '';
  for (const line of journal.split('\n')) {
    if (line === '') continue;
    const rec = decodeRecord(line);
    if (rec) outbox.replay(rec);
    else out.unreadableRecords += 1;
  }
  await outbox.loadDeadLetters();
  out.backlog = outbox.backlog();
  out.deadLetters = outbox.deadLetters();
  try {
    const fs = await statfs(dataDir);
    out.freeBytes = fs.bavail * fs.bsize;
  } catch {
    // a folder that does not exist yet, or a file system without statfs
  }
  return out;
}

const ago = (iso: string, now: number) => {
  const s = Math.round((now - Date.parse(iso)) / 1000);
  return s < 120
    ? `${s} s ago`
    : s < 7200
      ? `${Math.round(s / 60)} min ago`
      : `${Math.round(s / 3600)} h ago`;
};

/** How the collector is reached: one line when every address goes the same way, else one per address. */
function proxyLines(r: ProbeStatusFile | undefined): string[] {
  const routes = r?.proxies;
  if (!routes || routes.length === 0) return [];
  const ways = new Set(routes.map((p) => p.route));
  if (ways.size === 1) return [`proxy:            ${routes[0]!.route}`];
  return ['proxy:', ...routes.map((p) => `  ${p.collector_url}: ${p.route}`)];
}

const kib = (n: number) => `${Math.floor(n / 1024)} KiB`;

/**
 * `full` when the running probe said so, or when the folder has less free space than the
 * probe needs before it takes new canaries (it may not have been able to say so).
 */
function storageLine(s: LocalProbeStatus): string {
  const said = s.running?.storage;
  const free = s.freeBytes === undefined ? '' : `, ${kib(s.freeBytes)} free`;
  if (said?.state === 'full') {
    return (
      `storage:          FULL since ${said.since ?? '?'} (${said.code ?? 'write refused'}${free}): ` +
      `no new canaries until space returns${s.running?.deferred_canaries ? `; ${s.running.deferred_canaries} canary(ies) waiting` : ''}`
    );
  }
  if (s.freeBytes !== undefined && s.freeBytes < CHECK_BYTES) {
    return `storage:          FULL (${kib(s.freeBytes)} free, under ${kib(CHECK_BYTES)}): the probe takes no new canaries until space returns`;
  }
  return `storage:          ok${free}`;
}

/** Plain lines for a terminal. */
export function formatLocalStatus(s: LocalProbeStatus, now = Date.now()): string {
  const r = s.running;
  const lines = [
    `data folder:      ${s.dataDir}`,
    `identity:         ${s.probeId ? `${s.probeId} (registered ${s.registeredAt ?? '?'})` : 'not registered yet'}`,
    `collector:        ${r?.collector_url ?? s.registeredWith ?? '(unknown)'}${
      r && r.collector_urls.length > 1 ? ` (of ${r.collector_urls.join(', ')})` : ''
    }`,
    ...proxyLines(r),
    `last check-in:    ${r?.last_checkin_at ? `${r.last_checkin_at} (${ago(r.last_checkin_at, now)})` : 'none yet'}`,
  ];
  if (r?.last_checkin_error) lines.push(`last error:       ${r.last_checkin_error}`);
  lines.push(
    `clock offset:     ${r?.clock ? `${r.clock.offset_ms} ms (rtt ${r.clock.rtt_ms} ms)` : 'not measured yet'}`,
    storageLine(s),
    `outbox backlog:   ${s.backlog} event(s)`,
    `dead letters:     ${s.deadLetters} (outbox/dead-letter.ndjson)`,
  );
  if (s.unreadableRecords > 0) lines.push(`unreadable journal lines: ${s.unreadableRecords}`);
  if (r) {
    lines.push(`status written:   ${r.written_at} by pid ${r.pid}`);
    lines.push('accounts:');
    for (const a of r.accounts) lines.push(`  ${a.platform}/${a.handle}: ${a.state}`);
    if (r.accounts.length === 0) lines.push('  (none)');
  } else {
    lines.push('accounts:         (no status yet: the probe has not checked in since it started)');
  }
  return `${lines.join('\n')}\n`;
}
