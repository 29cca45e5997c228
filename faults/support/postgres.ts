/**
 * A Postgres server the test owns: `initdb` in a temporary folder, its own port on
 * 127.0.0.1, its unix socket in that folder, trust authentication, started and stopped
 * with `pg_ctl` (`-m fast` or `-m immediate`), so a case can restart or crash the database
 * under the collector without touching the machine's own server.
 *
 * Postgres refuses to run as root: as root the binaries run as the `postgres` user
 * (`runuser -u postgres --`), and the folder is given to that user. The binaries are found
 * on PATH or in /usr/lib/postgresql/<version>/bin (Debian's layout), newest first.
 *
 * `fsync=off`: the suite kills Postgres processes, never the machine; what a killed server
 * wrote is in the kernel's page cache and survives, so crash recovery is exercised as in
 * production, without paying for disk flushes on a shared CI machine.
 */
import { execFile } from 'node:child_process';
import { accessSync, chownSync, constants, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { anyFreePort } from '../../cli/local/ports.ts';

const run = promisify(execFile);

export interface PostgresBinaries {
  initdb: string;
  pgCtl: string;
  /** Prefix that runs a command as the unprivileged user (as root), else empty. */
  asUser: string[];
  /** uid and gid the data folder must belong to (as root). */
  owner?: { uid: number; gid: number };
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

function debianBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (executable(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin');
  return undefined;
}

/** The binaries, or why they cannot be used (the suite then skips, or fails under SILENTDROP_REQUIRE_ALL=1). */
export async function findPostgres(): Promise<PostgresBinaries | string> {
  const dir = debianBinDir();
  const initdb = onPath('initdb') ?? (dir && join(dir, 'initdb'));
  const pgCtl = onPath('pg_ctl') ?? (dir && join(dir, 'pg_ctl'));
  if (!initdb || !pgCtl) return 'initdb and pg_ctl not found (PATH, /usr/lib/postgresql/*/bin)';
  if (process.getuid?.() !== 0) return { initdb, pgCtl, asUser: [] };
  const runuser = onPath('runuser') ?? ['/usr/sbin/runuser', '/sbin/runuser'].find(executable);
  if (!runuser) return 'running as root and runuser is missing (Postgres refuses to run as root)';
  try {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    return { initdb, pgCtl, asUser: [runuser, '-u', 'postgres', '--'], owner: { uid, gid } };
  } catch {
    return 'running as root and there is no `postgres` user to run the server as';
  }
}

export type StopMode = 'fast' | 'immediate';

export interface OwnedPostgres {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url(database?: string): string;
  /** The server's folder (data in `data/`, log in `server.log`). */
  dir: string;
  createDatabase(name: string): Promise<string>;
  start(): Promise<void>;
  /** `pg_ctl stop -m <mode>`: fast rolls back and disconnects, immediate crashes (recovery on start). */
  stop(mode: StopMode): Promise<void>;
  /** Stops (immediate) and removes the folder. */
  destroy(): Promise<void>;
}

export async function startOwnedPostgres(bin: PostgresBinaries): Promise<OwnedPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'sd-faults-pg-'));
  if (bin.owner) chownSync(dir, bin.owner.uid, bin.owner.gid);
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const port = await anyFreePort();
  const as = (cmd: string, args: string[]) =>
    bin.asUser.length > 0 ? run(bin.asUser[0]!, [...bin.asUser.slice(1), cmd, ...args]) : run(cmd, args);
  const ctl = async (args: string[]) => {
    try {
      await as(bin.pgCtl, ['-D', data, ...args]);
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`pg_ctl ${args[0]} failed: ${e.stderr || e.stdout || e.message} (log: ${log})`);
    }
  };
  await as(bin.initdb, ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync']);
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    `-c listen_addresses=127.0.0.1`,
    '-c fsync=off',
    '-c full_page_writes=off',
    '-c max_connections=60',
  ].join(' ');
  let running = false;
  const owned: OwnedPostgres = {
    port,
    dir,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
      const client = new pg.Client({ connectionString: owned.url() });
      await client.connect();
      try {
        await client.query(`create database ${name}`);
      } finally {
        await client.end();
      }
      return owned.url(name);
    },
    async start() {
      await ctl(['start', '-w', '-t', '60', '-l', log, '-o', options]);
      running = true;
    },
    async stop(mode) {
      await ctl(['stop', '-w', '-t', '60', '-m', mode]);
      running = false;
    },
    async destroy() {
      if (running) await owned.stop('immediate').catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await owned.start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return owned;
}
