/**
 * A real XMPP server (Debian's Prosody 0.12 + prosody-modules' mod_firewall) that
 * censors according to a testbed policy: silentdrop's validation target that nobody
 * on this project wrote. Part of the testbed: imports nothing of silentdrop outside
 * testbed/.
 *
 * `startProsody` writes a config, a groups file (one group per registration region)
 * and a firewall script (firewall.ts) into a temporary folder, registers the accounts
 * with prosodyctl, starts `prosody -F` as a child process on a free loopback port,
 * waits until it accepts connections and checks the log that the firewall script
 * compiled: a script that fails to compile leaves the server open (fail-open), so
 * that is an error here, never a warning.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { type Logger, pino } from 'pino';
import { type Policy, resolvePolicy } from '../policy.ts';
import { renderConfig, renderGroups } from './config.ts';
import { generateFirewallScript } from './firewall.ts';

export {
  FirewallPolicyError,
  type FirewallProblem,
  firewallProblems,
  generateFirewallScript,
} from './firewall.ts';

const run = promisify(execFile);

export const PROSODY_BIN = '/usr/bin/prosody';
export const PROSODYCTL_BIN = '/usr/bin/prosodyctl';

/** True when Prosody and mod_firewall are installed (tests skip without them). */
export function prosodyAvailable(): boolean {
  return (
    existsSync(PROSODY_BIN) &&
    existsSync(PROSODYCTL_BIN) &&
    existsSync('/usr/lib/prosody/modules/mod_firewall/mod_firewall.lua')
  );
}

export interface ProsodyAccount {
  /** Local part (`cn1`) or bare JID on the server's domain (`cn1@localhost`). */
  user: string;
  password: string;
  /** Registration region: the mod_groups group the account belongs to. */
  region: string;
}

export interface ProsodyRoom {
  /** Local part of the room (`g1`) or its bare JID on the MUC domain. */
  name: string;
  /** Account users or bare JIDs: who the room is for (listed in `accountsDocument()`). */
  members: readonly string[];
}

export interface ProsodyOptions {
  /** A testbed policy: file path, validated Policy, or a plain object in the file format. */
  policy: string | Policy | Record<string, unknown>;
  accounts: readonly ProsodyAccount[];
  rooms?: readonly ProsodyRoom[];
  /** Default `localhost`; the MUC component is `conference.<domain>`. */
  domain?: string;
  /** Default: a free port chosen at start. */
  port?: number;
  /** Use this firewall script instead of generating one from the policy (still checked to compile). */
  firewallScript?: string;
  logger?: Logger;
  /** Milliseconds to wait for the server to accept connections (default 10 000). */
  startTimeoutMs?: number;
}

export interface ProsodyServer {
  host: string;
  port: number;
  domain: string;
  mucDomain: string;
  /** Bare JIDs of the accounts, in the order given. */
  jids: string[];
  rooms: { jid: string; members: string[] }[];
  dir: string;
  configPath: string;
  firewallPath: string;
  logPath: string;
  /** The generated (or given) firewall script. */
  firewallScript: string;
  /** The accounts file of issue 7 (`silentdrop evaluate --accounts`) for this server. */
  accountsDocument(): AccountsDocument;
  /** Stops the server (SIGTERM, SIGKILL after 5 s) and removes the temporary folder. */
  stop(): Promise<void>;
  /** Stops and starts the server again on the same port with the same data. */
  restart(): Promise<void>;
}

export interface AccountsDocument {
  platform: 'xmpp';
  server: { host: string; port: number; domain: string; tls: false };
  accounts: { handle: string; password: string; region: string }[];
  groups: { room: string; members: string[] }[];
}

const NODE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export async function startProsody(options: ProsodyOptions): Promise<ProsodyServer> {
  const log = options.logger ?? pino({ level: 'silent' });
  const policy = resolvePolicy(options.policy);
  const domain = options.domain ?? 'localhost';
  const mucDomain = `conference.${domain}`;
  const host = '127.0.0.1';
  const toJid = (name: string, d: string) => (name.includes('@') ? name : `${name}@${d}`);

  const accounts = options.accounts.map((a) => {
    const jid = toJid(a.user, domain).toLowerCase();
    const [node, accountDomain] = jid.split('@') as [string, string];
    if (accountDomain !== domain || !NODE.test(node))
      throw new Error(`account ${a.user}: not a plain user on ${domain}`);
    if (!policy.regions.includes(a.region)) {
      throw new Error(
        `account ${a.user}: region ${a.region} is not in the policy's regions (${policy.regions.join(', ')})`,
      );
    }
    if (a.password.length === 0 || /\s/.test(a.password)) {
      throw new Error(`account ${a.user}: password must be non-empty, without whitespace`);
    }
    return { ...a, node, jid };
  });
  const rooms = (options.rooms ?? []).map((r) => {
    const jid = toJid(r.name, mucDomain).toLowerCase();
    if (!jid.endsWith(`@${mucDomain}`)) throw new Error(`room ${r.name}: must be on ${mucDomain}`);
    const members = r.members.map((m) => toJid(m, domain).toLowerCase());
    for (const m of members) {
      if (!accounts.some((a) => a.jid === m))
        throw new Error(`room ${r.name}: member ${m} is not an account`);
    }
    return { jid, members };
  });

  const dir = mkdtempSync(join(tmpdir(), 'silentdrop-prosody-'));
  let child: ChildProcess | undefined;
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);
  try {
    mkdirSync(join(dir, 'data'));
    mkdirSync(join(dir, 'certs'));
    const paths = {
      configPath: join(dir, 'prosody.cfg.lua'),
      groupsPath: join(dir, 'groups.txt'),
      firewallPath: join(dir, 'policy.pfw'),
      logPath: join(dir, 'prosody.log'),
    };
    const byRegion = new Map<string, string[]>();
    for (const a of accounts) byRegion.set(a.region, [...(byRegion.get(a.region) ?? []), a.jid]);
    const senderListPath = (region: string) => join(dir, `sender-${region}.list`);
    for (const region of policy.regions) {
      writeFileSync(senderListPath(region), (byRegion.get(region) ?? []).map((j) => `${j}\n`).join(''));
    }
    const firewallScript =
      options.firewallScript ?? generateFirewallScript(policy, { mucDomain, senderListPath });
    writeFileSync(paths.firewallPath, firewallScript);
    writeFileSync(paths.groupsPath, renderGroups(policy.regions, byRegion));
    const port = options.port ?? (await freePort());
    writeFileSync(paths.configPath, renderConfig({ dir, port, domain, mucDomain, ...paths }));

    await Promise.all(
      accounts.map((a) =>
        run(PROSODYCTL_BIN, ['--config', paths.configPath, 'register', a.node, domain, a.password], {
          timeout: 15_000,
        }).catch((err: unknown) => {
          throw new Error(`prosodyctl register ${a.jid} failed: ${(err as Error).message}`, { cause: err });
        }),
      ),
    );

    const startTimeoutMs = options.startTimeoutMs ?? 10_000;
    const launch = async (): Promise<void> => {
      const logOffset = existsSync(paths.logPath) ? readFileSync(paths.logPath).length : 0;
      const proc = spawn(PROSODY_BIN, ['--config', paths.configPath, '-F'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = proc;
      let output = '';
      const collect = (b: Buffer) => {
        output = (output + b.toString('utf8')).slice(-4000);
      };
      proc.stdout?.on('data', collect);
      proc.stderr?.on('data', collect);
      let exited: string | undefined;
      proc.once('exit', (code, signal) => {
        exited = `exited (code ${code}, signal ${signal})`;
        if (child === proc) child = undefined;
      });
      const deadline = Date.now() + startTimeoutMs;
      for (;;) {
        if (exited)
          throw new Error(
            `prosody ${exited} during start-up:\n${output}\n${logTail(paths.logPath, logOffset)}`,
          );
        const logText = logTail(paths.logPath, logOffset, Number.POSITIVE_INFINITY);
        const failure = firewallFailure(logText, paths.firewallPath);
        if (failure)
          throw new Error(`the firewall script did not compile (server would fail open): ${failure}`);
        if (firewallLoaded(logText, paths.firewallPath) && (await accepts(host, port))) return;
        if (Date.now() > deadline) {
          throw new Error(
            `prosody did not become ready in ${startTimeoutMs} ms (port ${port}, firewall loaded: ${firewallLoaded(logText, paths.firewallPath)}):\n${logTail(paths.logPath, logOffset)}`,
          );
        }
        await sleep(25);
      }
    };

    const stopProcess = async (): Promise<void> => {
      const proc = child;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    };

    try {
      await launch();
    } catch (err) {
      await stopProcess();
      throw err;
    }
    log.info({ port, dir, accounts: accounts.length, rooms: rooms.length }, 'prosody started');

    let stopped = false;
    const server: ProsodyServer = {
      host,
      port,
      domain,
      mucDomain,
      jids: accounts.map((a) => a.jid),
      rooms,
      dir,
      ...paths,
      firewallScript,
      accountsDocument: () => ({
        platform: 'xmpp',
        server: { host, port, domain, tls: false },
        accounts: accounts.map((a) => ({ handle: a.jid, password: a.password, region: a.region })),
        groups: rooms.map((r) => ({ room: r.jid, members: [...r.members] })),
      }),
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopProcess();
        process.removeListener('exit', killOnExit);
        rmSync(dir, { recursive: true, force: true });
        log.info({ port }, 'prosody stopped');
      },
      async restart() {
        if (stopped) throw new Error('prosody was stopped');
        await stopProcess();
        try {
          await launch();
        } catch (err) {
          await stopProcess();
          throw err;
        }
        log.info({ port }, 'prosody restarted');
      },
    };
    return server;
  } catch (err) {
    child?.kill('SIGKILL');
    process.removeListener('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** The log lines mod_firewall writes when a script failed to compile, if any. */
export function firewallFailure(logText: string, scriptPath: string): string | undefined {
  const line = logText
    .split('\n')
    .find(
      (l) =>
        (l.includes('Error compiling') || l.includes('Compilation error for')) &&
        (l.includes(scriptPath) || l.includes('firewall')),
    );
  return line?.trim();
}

/** mod_firewall logs `Loaded <path>` (debug level) after a script compiled and its chains are hooked. */
export function firewallLoaded(logText: string, scriptPath: string): boolean {
  return logText
    .split('\n')
    .some((l) => /\bfirewall\b/.test(l) && l.trimEnd().endsWith(`Loaded ${scriptPath}`));
}

function logTail(path: string, offset: number, max = 3000): string {
  if (!existsSync(path)) return '';
  const text = readFileSync(path).subarray(offset).toString('utf8');
  return Number.isFinite(max) ? text.slice(-max) : text;
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.connect(port, host);
  });
}

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
