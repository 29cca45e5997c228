/**
 * The probe's identity: an Ed25519 key made on first run and the probe id the
 * collector gave at registration, kept in `<data>/identity.json` (mode 0600, written
 * atomically). The key is written *before* registering, so a crash between the two
 * retries registration with the same key instead of orphaning a registered one.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { PROTOCOL_VERSION } from '../protocol/index.ts';
import { privateKeyFromPem, publicKeyToBase64 } from '../protocol/signing.ts';
import { type CollectorClient, CollectorError } from './client.ts';
import { atomicWriteFile, ensurePrivateDir } from './fsutil.ts';
import { SOFTWARE_VERSION } from './version.ts';

export class IdentityError extends Error {
  readonly code = 'SD_ERR_PROBE_IDENTITY';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IdentityError';
  }
}

interface IdentityFile {
  version: 1;
  private_key_pem: string;
  public_key: string;
  /** Absent until registration succeeded. */
  probe_id?: string;
  collector_url: string;
  registered_at?: string;
}

export interface ProbeIdentity {
  probeId: string;
  privateKey: KeyObject;
  publicKey: string;
}

export interface IdentityOptions {
  dataDir: string;
  collectorUrl: string;
  enrollmentToken?: string;
  country: string;
  asn: number;
  label?: string;
  client: CollectorClient;
  logger: Logger;
  /**
   * While the collector gives no answer (network, timeout, 5xx, 429), registration is
   * tried again with exponential backoff and jitter (default 2 s doubling to 5 min) until
   * it succeeds or `stopped()` says to give up. A refusal (4xx) is final.
   */
  retry?: { baseMs: number; maxMs: number };
  stopped?: () => boolean;
}

export function identityPath(dataDir: string): string {
  return join(dataDir, 'identity.json');
}

async function readIdentity(path: string): Promise<IdentityFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const f = JSON.parse(text) as IdentityFile;
    if (typeof f.private_key_pem !== 'string' || typeof f.public_key !== 'string')
      throw new Error('fields missing');
    return f;
  } catch (err) {
    throw new IdentityError(
      `${path} is not a valid identity file (${(err as Error).message}); move it away to re-enrol`,
    );
  }
}

async function writeNewKey(path: string, collectorUrl: string): Promise<IdentityFile> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const file: IdentityFile = {
    version: 1,
    private_key_pem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    public_key: publicKeyToBase64(publicKey),
    collector_url: collectorUrl,
  };
  await atomicWriteFile(path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
  return file;
}

/**
 * Makes the probe's key in `<dataDir>/identity.json` (0600) if there is none yet, without
 * registering (`silentdrop probe init`); the probe registers it at its first start.
 * Returns the public key, and whether it was made now.
 */
export async function ensureIdentityKey(
  dataDir: string,
  collectorUrl: string,
): Promise<{ publicKey: string; created: boolean }> {
  await ensurePrivateDir(dataDir);
  const path = identityPath(dataDir);
  const existing = await readIdentity(path);
  if (existing) return { publicKey: existing.public_key, created: false };
  return { publicKey: (await writeNewKey(path, collectorUrl)).public_key, created: true };
}

/** Loads the stored identity, or makes a key and registers it (first run). */
export async function loadOrRegister(opts: IdentityOptions): Promise<ProbeIdentity> {
  await ensurePrivateDir(opts.dataDir);
  const path = identityPath(opts.dataDir);
  let file = await readIdentity(path);
  if (file?.probe_id) {
    if (file.collector_url !== opts.collectorUrl) {
      opts.logger.warn(
        { registered_with: file.collector_url, collector_url: opts.collectorUrl },
        'collector URL differs from the one this probe registered with',
      );
    }
    return {
      probeId: file.probe_id,
      privateKey: privateKeyFromPem(file.private_key_pem),
      publicKey: file.public_key,
    };
  }
  if (!opts.enrollmentToken) {
    throw new IdentityError(
      `no identity in ${opts.dataDir} and no enrollment_token in the config: ask the collector's admin for a token`,
    );
  }
  file ??= await writeNewKey(path, opts.collectorUrl);
  let res: { probe_id: string } | undefined;
  const retry = opts.retry ?? { baseMs: 2000, maxMs: 5 * 60_000 };
  for (let attempt = 0; res === undefined; attempt++) {
    try {
      res = await opts.client.register({
        protocol: PROTOCOL_VERSION,
        enrollment_token: opts.enrollmentToken,
        public_key: file.public_key,
        country: opts.country,
        asn: opts.asn,
        software_version: SOFTWARE_VERSION,
        ...(opts.label ? { label: opts.label } : {}),
      });
      break;
    } catch (err) {
      if (
        err instanceof CollectorError &&
        err.kind === 'http' &&
        err.status !== undefined &&
        err.status < 500 &&
        err.status !== 429 &&
        err.status !== 408
      ) {
        throw new IdentityError(`the collector refused registration: ${err.message}`, { cause: err });
      }
      if (opts.stopped?.()) throw registrationFailed(opts, err);
      const wait = Math.min(retry.maxMs, retry.baseMs * 2 ** Math.min(attempt, 20));
      const delay = Math.round(wait / 2 + (Math.random() * wait) / 2);
      opts.logger.warn(
        { err: (err as Error).message, attempt: attempt + 1, retry_in_ms: delay },
        'cannot register with the collector yet; trying again',
      );
      await new Promise((r) => setTimeout(r, delay));
      if (opts.stopped?.()) throw registrationFailed(opts, err);
    }
  }
  file = { ...file, probe_id: res.probe_id, registered_at: new Date().toISOString() };
  await atomicWriteFile(path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
  opts.logger.info({ probe: res.probe_id }, 'registered with the collector');
  return {
    probeId: res.probe_id,
    privateKey: privateKeyFromPem(file.private_key_pem),
    publicKey: file.public_key,
  };
}

function registrationFailed(opts: IdentityOptions, err: unknown): IdentityError {
  return new IdentityError(
    `cannot register with the collector at ${opts.collectorUrl}: ${(err as Error).message}`,
    { cause: err },
  );
}
