/**
 * Collector configuration, read once from the environment and CLI flags, validated at
 * start. Secrets that are not given (admin token, hashing key) are generated once and
 * kept 0600 in the data folder, so a restart keeps them.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { SdError } from './errors.ts';

export interface CollectorConfig {
  /** Without it the embedded PGlite in `<dataDir>/pglite` is used. */
  databaseUrl: string | undefined;
  /** Connections in the pool to a Postgres server (DATABASE_POOL_SIZE). */
  databasePoolSize: number;
  /**
   * Which reverse proxies' X-Forwarded-For to believe, so rate limits see clients
   * (SILENTDROP_TRUST_PROXY: false, a hop count, or addresses / CIDRs / loopback).
   * Addresses are only ever hashed, never stored or logged.
   */
  trustProxy: boolean | number | string[];
  dataDir: string;
  host: string;
  port: number;
  adminToken: string;
  /** Key for the keyed hashes (enrollment tokens). */
  hashKey: Buffer;
  /** How often probes are asked to check in; canaries due within it are handed out. */
  checkinIntervalMs: number;
  /** How often the finaliser and round planner run. */
  sweepIntervalMs: number;
  /** A probe with no check-in for this long is `silent` (probes view, alerts). */
  probeSilentAfterMs: number;
  /** Days after a canary's deadline its raw events are kept (0: forever; collector/retention.ts). */
  eventRetentionDays: number;
  /** Days a receipt of a nonce that is no canary of ours (a look-alike) is kept (0: forever). */
  lookAlikeRetentionDays: number;
  /** Statement timeout of every research API query (enforced on a Postgres server). */
  researchStatementTimeoutMs: number;
  /** Research exports streaming at once; one more answers 503 SD_ERR_BUSY (decision 026). */
  exportMaxConcurrent: number;
  /** The longest one export runs on a Postgres server (its COPY's statement timeout). */
  exportTimeoutMs: number;
  /** An export whose client read nothing this long while its connection was full is cut. */
  exportStallMs: number;
  /**
   * Screens clear a set only with the clearance rule of decision 024 (as strong as a sequential
   * `none`: a partial drop is not cleared by the one pack it missed), at two to three times the
   * messages (20 and 100 term sets in `evaluate`, decision 024). Default true (decision 038);
   * false clears a set on the first pass's one intact pack.
   */
  screenClearance: boolean;
  logLevel: string;
}

export interface ConfigFlags {
  port?: string | number | undefined;
  host?: string | undefined;
  data?: string | undefined;
  databaseUrl?: string | undefined;
}

/** How often probes are asked to check in unless SILENTDROP_CHECKIN_INTERVAL_MS says otherwise. */
export const DEFAULT_CHECKIN_INTERVAL_MS = 60_000;

/** A century: beyond it, say 0 (keep forever). */
const MAX_RETENTION_DAYS = 36_500;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Config problems are collected and reported together, one line each. */
class Problems {
  readonly list: string[] = [];
  add(message: string): void {
    this.list.push(message);
  }
  throwIfAny(): void {
    if (this.list.length === 1) throw new SdError('SD_ERR_CONFIG', this.list[0]!);
    if (this.list.length > 1) {
      throw new SdError(
        'SD_ERR_CONFIG',
        `${this.list.length} settings are wrong:\n- ${this.list.join('\n- ')}`,
      );
    }
  }
}

function fail(message: string): never {
  throw new SdError('SD_ERR_CONFIG', message);
}

function intFrom(
  problems: Problems,
  name: string,
  raw: string | number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined || raw === '') return fallback;
  // Decimal digits only: Number() would read " " as 0 (for a retention: keep forever), "1e3" as 1000.
  const n = typeof raw === 'number' ? raw : /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.add(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
    return fallback;
  }
  return n;
}

function boolFrom(problems: Problems, name: string, raw: string | undefined, fallback: boolean): boolean {
  const v = raw?.trim().toLowerCase();
  if (v === undefined || v === '') return fallback;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  problems.add(`${name} must be true or false, got "${raw}"`);
  return fallback;
}

function trustProxyFrom(problems: Problems, raw: string | undefined): boolean | number | string[] {
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (/^\d{1,2}$/.test(raw)) return Number(raw);
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const ok = (s: string) =>
    ['loopback', 'linklocal', 'uniquelocal'].includes(s) || /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(s);
  const bad = list.filter((s) => !ok(s));
  if (bad.length > 0 || list.length === 0) {
    problems.add(
      `SILENTDROP_TRUST_PROXY must be false, a hop count, or addresses/CIDRs of your proxies (or loopback), got "${raw}"`,
    );
    return false;
  }
  return list;
}

/**
 * Reads an env file (KEY=value lines, as Node's --env-file). Variables already in the
 * environment win over the file.
 */
export function withEnvFile(env: NodeJS.ProcessEnv, path: string): NodeJS.ProcessEnv {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    fail(`cannot read the env file ${path}: ${(err as Error).message}`);
  }
  return { ...parseEnv(text), ...env };
}

/** Reads a secret file, or creates it with fresh random content (mode 0600). */
function secretFile(problems: Problems, dataDir: string, name: string, make: () => string): string {
  const path = join(dataDir, name);
  if (existsSync(path)) {
    const value = readFileSync(path, 'utf8').trim();
    if (value.length < 16)
      problems.add(`${path} is shorter than 16 characters; delete it to generate a new one`);
    return value;
  }
  const value = make();
  writeFileSync(path, `${value}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return value;
}

export function loadConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env): CollectorConfig {
  const problems = new Problems();
  const databaseUrl = flags.databaseUrl ?? (env.DATABASE_URL || undefined);
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.add('DATABASE_URL must start with postgres:// or postgresql://');
  }
  const dataDir = resolve(flags.data ?? env.SILENTDROP_DATA ?? './data');
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    // Nothing below can work without it: report it with what was found so far.
    problems.add(`cannot create the data folder ${dataDir}: ${(err as Error).message}`);
    problems.throwIfAny();
  }
  const host = flags.host ?? env.HOST ?? '127.0.0.1';
  if (host.trim() === '') problems.add('HOST must not be empty');
  const port = intFrom(problems, 'PORT', flags.port ?? env.PORT, 8080, 0, 65535);
  const logLevel = env.LOG_LEVEL ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) problems.add(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);

  const adminToken =
    env.SILENTDROP_ADMIN_TOKEN ||
    secretFile(problems, dataDir, 'admin-token', () => randomBytes(32).toString('base64url'));
  if (env.SILENTDROP_ADMIN_TOKEN && adminToken.length < 16) {
    problems.add('SILENTDROP_ADMIN_TOKEN must be at least 16 characters');
  }
  const hashKeyText =
    env.SILENTDROP_HASH_KEY ||
    secretFile(problems, dataDir, 'hash-key', () => randomBytes(32).toString('base64url'));
  if (env.SILENTDROP_HASH_KEY && hashKeyText.length < 16) {
    problems.add('SILENTDROP_HASH_KEY must be at least 16 characters');
  }

  const config: CollectorConfig = {
    databaseUrl,
    databasePoolSize: intFrom(problems, 'DATABASE_POOL_SIZE', env.DATABASE_POOL_SIZE, 10, 1, 500),
    trustProxy: trustProxyFrom(problems, env.SILENTDROP_TRUST_PROXY),
    dataDir,
    host,
    port,
    adminToken,
    hashKey: Buffer.from(hashKeyText, 'utf8'),
    checkinIntervalMs: intFrom(
      problems,
      'SILENTDROP_CHECKIN_INTERVAL_MS',
      env.SILENTDROP_CHECKIN_INTERVAL_MS,
      DEFAULT_CHECKIN_INTERVAL_MS,
      1000,
      86_400_000,
    ),
    sweepIntervalMs: intFrom(
      problems,
      'SILENTDROP_SWEEP_INTERVAL_MS',
      env.SILENTDROP_SWEEP_INTERVAL_MS,
      10_000,
      100,
      3_600_000,
    ),
    probeSilentAfterMs: intFrom(
      problems,
      'SILENTDROP_PROBE_SILENT_AFTER_MS',
      env.SILENTDROP_PROBE_SILENT_AFTER_MS,
      15 * 60_000,
      10_000,
      30 * 86_400_000,
    ),
    eventRetentionDays: intFrom(
      problems,
      'SILENTDROP_EVENT_RETENTION_DAYS',
      env.SILENTDROP_EVENT_RETENTION_DAYS,
      365,
      0,
      MAX_RETENTION_DAYS,
    ),
    lookAlikeRetentionDays: intFrom(
      problems,
      'SILENTDROP_LOOKALIKE_RETENTION_DAYS',
      env.SILENTDROP_LOOKALIKE_RETENTION_DAYS,
      30,
      0,
      MAX_RETENTION_DAYS,
    ),
    researchStatementTimeoutMs: intFrom(
      problems,
      'SILENTDROP_RESEARCH_STATEMENT_TIMEOUT_MS',
      env.SILENTDROP_RESEARCH_STATEMENT_TIMEOUT_MS,
      30_000,
      1000,
      600_000,
    ),
    exportMaxConcurrent: intFrom(
      problems,
      'SILENTDROP_EXPORT_MAX_CONCURRENT',
      env.SILENTDROP_EXPORT_MAX_CONCURRENT,
      4,
      1,
      64,
    ),
    exportTimeoutMs: intFrom(
      problems,
      'SILENTDROP_EXPORT_TIMEOUT_MS',
      env.SILENTDROP_EXPORT_TIMEOUT_MS,
      3_600_000,
      60_000,
      86_400_000,
    ),
    exportStallMs: intFrom(
      problems,
      'SILENTDROP_EXPORT_STALL_MS',
      env.SILENTDROP_EXPORT_STALL_MS,
      60_000,
      1000,
      3_600_000,
    ),
    screenClearance: boolFrom(problems, 'SILENTDROP_SCREEN_CLEARANCE', env.SILENTDROP_SCREEN_CLEARANCE, true),
    logLevel,
  };
  problems.throwIfAny();
  return config;
}
