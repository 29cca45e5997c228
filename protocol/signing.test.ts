import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  canonicalSigningString,
  publicKeyFromBase64,
  publicKeyToBase64,
  signString,
  verifyString,
} from './signing.ts';

describe('request signing', () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const parts = {
    method: 'post',
    path: '/probe/v1/events',
    probeId: '00000000-0000-4000-8000-000000000001',
    timestamp: '1780000000000',
    requestId: '00000000-0000-4000-8000-000000000002',
    body: '{"protocol":1}',
  };

  it('round-trips a public key through its raw base64 form', () => {
    const b64 = publicKeyToBase64(publicKey);
    expect(b64).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const back = publicKeyFromBase64(b64);
    expect(verifyString(back, 'x', signString(privateKey, 'x'))).toBe(true);
  });

  it('verifies a signature over the exact body and rejects any changed byte', () => {
    const sig = signString(privateKey, canonicalSigningString(parts));
    expect(verifyString(publicKey, canonicalSigningString(parts), sig)).toBe(true);
    expect(verifyString(publicKey, canonicalSigningString({ ...parts, body: '{"protocol":2}' }), sig)).toBe(
      false,
    );
    expect(
      verifyString(publicKey, canonicalSigningString({ ...parts, timestamp: '1780000000001' }), sig),
    ).toBe(false);
    expect(
      verifyString(publicKey, canonicalSigningString({ ...parts, path: '/probe/v1/checkin' }), sig),
    ).toBe(false);
  });

  it('rejects a malformed signature or key without throwing', () => {
    expect(verifyString(publicKey, 'x', 'not base64!')).toBe(false);
    expect(() => publicKeyFromBase64('AAAA')).toThrow(/32 bytes/);
  });
});
