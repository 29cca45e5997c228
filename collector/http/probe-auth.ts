/**
 * Verifies a signed probe request (protocol/signing.ts, docs/decisions/003): headers
 * present, timestamp inside the window, probe known, Ed25519 signature over the exact
 * body bytes. Replay (a request id seen before) is checked in the handler's transaction,
 * so a refused request stores nothing at all.
 */
import type { FastifyRequest } from 'fastify';
import { LIMITS } from '../../protocol/index.ts';
import {
  canonicalSigningString,
  publicKeyFromBase64,
  SIGNATURE_HEADERS,
  verifyString,
} from '../../protocol/signing.ts';
import type { Db } from '../db/open.ts';
import { getProbe } from '../db/probes.ts';
import { SdError } from '../errors.ts';

export interface ProbeAuth {
  probeId: string;
  requestId: string;
  signature: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    probeAuth: ProbeAuth | null;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function probeAuthHook(db: Db, now: () => Date) {
  return async function verifyProbeRequest(req: FastifyRequest): Promise<void> {
    const probeId = header(req, SIGNATURE_HEADERS.probe);
    const timestamp = header(req, SIGNATURE_HEADERS.timestamp);
    const requestId = header(req, SIGNATURE_HEADERS.requestId);
    const signature = header(req, SIGNATURE_HEADERS.signature);
    if (!probeId || !timestamp || !requestId || !signature) {
      throw new SdError(
        'SD_ERR_AUTH_MISSING',
        `signed request needs headers ${Object.values(SIGNATURE_HEADERS).join(', ')}`,
      );
    }
    if (!UUID.test(probeId))
      throw new SdError('SD_ERR_AUTH_UNKNOWN_PROBE', `${SIGNATURE_HEADERS.probe}: unknown probe`);
    if (!UUID.test(requestId)) {
      throw new SdError('SD_ERR_AUTH_MISSING', `${SIGNATURE_HEADERS.requestId}: must be a UUID`);
    }
    const ts = /^\d{1,16}$/.test(timestamp) ? Number(timestamp) : Number.NaN;
    if (!Number.isFinite(ts) || Math.abs(now().getTime() - ts) > LIMITS.signatureWindowMs) {
      throw new SdError(
        'SD_ERR_AUTH_STALE',
        `${SIGNATURE_HEADERS.timestamp}: outside ±${LIMITS.signatureWindowMs / 1000} s of the collector clock`,
      );
    }
    const probe = await getProbe(db, probeId.toLowerCase());
    if (!probe) throw new SdError('SD_ERR_AUTH_UNKNOWN_PROBE', `${SIGNATURE_HEADERS.probe}: unknown probe`);
    const signed = canonicalSigningString({
      method: req.method,
      path: req.url,
      probeId,
      timestamp,
      requestId,
      body: req.rawBody ?? new Uint8Array(),
    });
    if (!verifyString(publicKeyFromBase64(probe.publicKey), signed, signature)) {
      throw new SdError('SD_ERR_AUTH_BAD_SIGNATURE', `${SIGNATURE_HEADERS.signature}: does not verify`);
    }
    req.probeAuth = { probeId: probe.id, requestId: requestId.toLowerCase(), signature };
  };
}
