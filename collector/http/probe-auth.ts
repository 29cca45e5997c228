/**
 * Verifies a signed probe request (protocol/signing.ts, docs/decisions/003) before any of
 * its body is read or parsed:
 * - onRequest (headers only): the four headers present and well formed, the timestamp
 *   inside the window, the probe known; its public key is kept on the request;
 * - while the body is parsed (http/body.ts): the Ed25519 signature over the exact body
 *   bytes is checked first, and JSON.parse runs only on a body that verifies;
 * - preValidation: a request without a body (no parser ran) is verified over no bytes.
 * Replay (a request id seen before) is checked in the handler's transaction, so a refused
 * request stores nothing at all.
 */
import type { KeyObject } from 'node:crypto';
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

/** What the headers claim, checked except for the signature itself. */
interface PendingProbeAuth {
  probeId: string;
  headerProbeId: string;
  timestamp: string;
  /** As sent (the signature covers it), and lower-cased (what replay checks store). */
  headerRequestId: string;
  requestId: string;
  signature: string;
  publicKey: KeyObject;
}

declare module 'fastify' {
  interface FastifyRequest {
    probeAuth: ProbeAuth | null;
    probeAuthPending: PendingProbeAuth | null;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** An Ed25519 signature is 64 bytes: 88 base64 characters. */
const SIGNATURE = /^[A-Za-z0-9+/]{86}==$/;

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Checks the signature of `body` against the pending auth; sets `req.probeAuth` or throws 401. */
export function verifyProbeBody(req: FastifyRequest, body: Uint8Array): void {
  const pending = req.probeAuthPending;
  if (!pending) throw new SdError('SD_ERR_AUTH_MISSING', 'signed request: headers were not checked');
  const signed = canonicalSigningString({
    method: req.method,
    path: req.url,
    probeId: pending.headerProbeId,
    timestamp: pending.timestamp,
    requestId: pending.headerRequestId,
    body,
  });
  if (!verifyString(pending.publicKey, signed, pending.signature)) {
    throw new SdError('SD_ERR_AUTH_BAD_SIGNATURE', `${SIGNATURE_HEADERS.signature}: does not verify`);
  }
  req.probeAuth = { probeId: pending.probeId, requestId: pending.requestId, signature: pending.signature };
}

export function probeAuthHooks(db: Db, now: () => Date) {
  /** onRequest: everything that needs no body. */
  async function checkProbeHeaders(req: FastifyRequest): Promise<void> {
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
    if (!SIGNATURE.test(signature)) {
      throw new SdError(
        'SD_ERR_AUTH_BAD_SIGNATURE',
        `${SIGNATURE_HEADERS.signature}: not an Ed25519 signature`,
      );
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
    req.probeAuthPending = {
      probeId: probe.id,
      headerProbeId: probeId,
      timestamp,
      headerRequestId: requestId,
      requestId: requestId.toLowerCase(),
      signature,
      publicKey: publicKeyFromBase64(probe.publicKey),
    };
    req.verifyBody = (body) => verifyProbeBody(req, body);
  }

  /** preValidation: a request whose body no parser saw (none sent) is verified over no bytes. */
  async function requireVerified(req: FastifyRequest): Promise<void> {
    if (req.probeAuth) return;
    verifyProbeBody(req, req.rawBody ?? new Uint8Array());
  }

  return { checkProbeHeaders, requireVerified };
}
