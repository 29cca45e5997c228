/**
 * Collector configuration, read once from the environment and CLI flags, validated at
 * start. Secrets that are not given (admin token, hashing key) are generated once and
 * kept 0600 in the data folder, so a restart keeps them.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SdError } from './errors.ts';

export interface CollectorConfig {
  /** Without it the embedded PGlite in `<dataDir>/pglite` is used. */
  databaseUrl: string | undefined;
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
  logLevel: string;
}

export interface ConfigFlags {
  port?: string | number | undefined;
  host?: string | undefined;
  data?: string | undefined;
  databaseUrl?: string | undefined;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function fail(message: string): never {
  throw new SdError('SD_ERR_CONFIG', message);
}

function intFrom(name: string, raw: string | number | undefined, fallback: number, min: number, max: number) {
  if (raw === undefined || raw === '') return fallback;
  const n = typeof raw === 'number' ? raw : Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    fail(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  return n;
}

/** Reads a secret file, or creates it with fresh random content (mode 0600). */
function secretFile(dataDir: string, name: string, make: () => string): string {
  const path = join(dataDir, name);
  if (existsSync(path)) {
    const value = readFileSync(path, 'utf8').trim();
    if (value.length < 16) fail(`${path} is shorter than 16 characters; delete it to generate a new one`);
    return value;
  }
  const value = make();
  writeFileSync(path, `${value}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return value;
}

export function loadConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env): CollectorConfig {
  const databaseUrl = flags.databaseUrl ?? (env.DATABASE_URL || undefined);
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    fail('DATABASE_URL must start with postgres:// or postgresql://');
  }
  const dataDir = resolve(flags.data ?? env.SILENTDROP_DATA ?? './data');
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    fail(`cannot create the data folder ${dataDir}: ${(err as Error).message}`);
  }
  const host = flags.host ?? env.HOST ?? '127.0.0.1';
  if (host.trim() === '') fail('HOST must not be empty');
  const port = intFrom('PORT', flags.port ?? env.PORT, 8080, 0, 65535);
  const logLevel = env.LOG_LEVEL ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) fail(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);

  const adminToken =
    env.SILENTDROP_ADMIN_TOKEN ||
    secretFile(dataDir, 'admin-token', () => randomBytes(32).toString('base64url'));
  if (adminToken.length < 16) fail('SILENTDROP_ADMIN_TOKEN must be at least 16 characters');
  const hashKeyText =
    env.SILENTDROP_HASH_KEY || secretFile(dataDir, 'hash-key', () => randomBytes(32).toString('base64url'));
  if (hashKeyText.length < 16) fail('SILENTDROP_HASH_KEY must be at least 16 characters');

  return {
    databaseUrl,
    dataDir,
    host,
    port,
    adminToken,
    hashKey: Buffer.from(hashKeyText, 'utf8'),
    checkinIntervalMs: intFrom(
      'SILENTDROP_CHECKIN_INTERVAL_MS',
      env.SILENTDROP_CHECKIN_INTERVAL_MS,
      60_000,
      1000,
      86_400_000,
    ),
    sweepIntervalMs: intFrom(
      'SILENTDROP_SWEEP_INTERVAL_MS',
      env.SILENTDROP_SWEEP_INTERVAL_MS,
      10_000,
      100,
      3_600_000,
    ),
    probeSilentAfterMs: intFrom(
      'SILENTDROP_PROBE_SILENT_AFTER_MS',
      env.SILENTDROP_PROBE_SILENT_AFTER_MS,
      15 * 60_000,
      10_000,
      30 * 86_400_000,
    ),
    logLevel,
  };
}
