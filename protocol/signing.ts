/**
 * Request signing shared by probe and collector. A signed request carries:
 *   x-sd-probe: probe id
 *   x-sd-timestamp: epoch ms (probe clock, corrected by its offset estimate)
 *   x-sd-request-id: a fresh UUID (replay protection)
 *   x-sd-signature: base64 Ed25519 signature over canonicalSigningString(...)
 * The signature covers the exact body bytes, so the collector verifies the raw body
 * before parsing it.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

export const SIGNATURE_HEADERS = {
  probe: 'x-sd-probe',
  timestamp: 'x-sd-timestamp',
  requestId: 'x-sd-request-id',
  signature: 'x-sd-signature',
} as const;

export function canonicalSigningString(parts: {
  method: string;
  path: string;
  probeId: string;
  timestamp: string;
  requestId: string;
  body: Uint8Array | string;
}): string {
  const digest = createHash('sha256').update(parts.body).digest('hex');
  return [
    'silentdrop-v1',
    parts.method.toUpperCase(),
    parts.path,
    parts.probeId,
    parts.timestamp,
    parts.requestId,
    digest,
  ].join('\n');
}

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Raw 32-byte Ed25519 public key (base64) → KeyObject. Throws on a malformed key. */
export function publicKeyFromBase64(b64: string): KeyObject {
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 32) throw new Error('public key must be 32 bytes');
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** KeyObject → raw 32-byte public key, base64. */
export function publicKeyToBase64(key: KeyObject): string {
  const der = key.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - 32)).toString('base64');
}

export function privateKeyFromPem(pem: string): KeyObject {
  return createPrivateKey(pem);
}

export function signString(privateKey: KeyObject, s: string): string {
  return sign(null, Buffer.from(s, 'utf8'), privateKey).toString('base64');
}

export function verifyString(publicKey: KeyObject, s: string, signatureB64: string): boolean {
  try {
    return verify(null, Buffer.from(s, 'utf8'), publicKey, Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}
