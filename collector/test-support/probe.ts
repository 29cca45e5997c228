/**
 * A test probe: an Ed25519 key, registration through the admin and probe APIs, signed
 * requests via `app.inject`, and check-ins that declare accounts and conversations.
 */
import { generateKeyPairSync, type KeyObject, randomUUID } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type {
  AccountReport,
  CheckinRequest,
  ConversationReport,
  SendCapacity,
} from '../../protocol/index.ts';
import { canonicalSigningString, publicKeyToBase64, signString } from '../../protocol/signing.ts';

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789';
export const TEST_HASH_KEY = Buffer.from('test-hash-key-0123456789abcdef');

export interface TestProbe {
  id: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export async function enrollProbe(
  app: FastifyInstance,
  input: { country?: string; asn?: number } = {},
): Promise<TestProbe> {
  const tokenRes = await app.inject({
    method: 'POST',
    url: '/admin/v1/enrollment-tokens',
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    payload: {},
  });
  if (tokenRes.statusCode !== 201) throw new Error(`enrollment token: ${tokenRes.body}`);
  const { token } = tokenRes.json() as { token: string };
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const reg = await app.inject({
    method: 'POST',
    url: '/probe/v1/register',
    payload: {
      protocol: 1,
      enrollment_token: token,
      public_key: publicKeyToBase64(publicKey),
      country: input.country ?? 'US',
      asn: input.asn ?? 64500,
      software_version: 'test',
    },
  });
  if (reg.statusCode !== 201) throw new Error(`register: ${reg.body}`);
  return { id: (reg.json() as { probe_id: string }).probe_id, privateKey, publicKey };
}

export interface SignOptions {
  timestamp?: number;
  requestId?: string;
  /** Sign with this key instead of the probe's (forgery). */
  key?: KeyObject;
  /** Sign these bytes but send the body (tampering). */
  signedBody?: string;
  omit?: boolean;
}

export function signedHeaders(probe: TestProbe, path: string, body: string, opts: SignOptions = {}) {
  const timestamp = String(opts.timestamp ?? Date.now());
  const requestId = opts.requestId ?? randomUUID();
  const signature = signString(
    opts.key ?? probe.privateKey,
    canonicalSigningString({
      method: 'POST',
      path,
      probeId: probe.id,
      timestamp,
      requestId,
      body: opts.signedBody ?? body,
    }),
  );
  return {
    'content-type': 'application/json',
    'x-sd-probe': probe.id,
    'x-sd-timestamp': timestamp,
    'x-sd-request-id': requestId,
    ...(opts.omit ? {} : { 'x-sd-signature': signature }),
  };
}

export async function signedPost(
  app: FastifyInstance,
  probe: TestProbe,
  path: string,
  payload: unknown,
  opts: SignOptions = {},
): Promise<LightMyRequestResponse> {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  return app.inject({
    method: 'POST',
    url: path,
    headers: signedHeaders(probe, path, body, opts),
    payload: body,
  });
}

export function account(
  platform: string,
  handle: string,
  region: string,
  state: AccountReport['state'] = 'active',
): AccountReport {
  return { platform, handle, region, adapter: { name: platform, version: '0.0.1' }, state };
}

/** A send capacity no test round reaches (pacing off, limits and budget far beyond any test). */
export const UNLIMITED_CAPACITY: SendCapacity = {
  pacing_min_ms: 0,
  pacing_max_ms: 0,
  per_minute: 1_000_000,
  per_hour: 10_000_000,
  per_day: 100_000_000,
  remaining_minute: 1_000_000,
  remaining_hour: 10_000_000,
  remaining_day: 100_000_000,
  queued: 0,
};

export function checkinBody(
  accounts: AccountReport[],
  conversations: ConversationReport[],
  extra: Partial<CheckinRequest> = {},
): CheckinRequest {
  return {
    protocol: 1,
    t0: Date.now(),
    software_version: 'test',
    accounts,
    conversations,
    outbox_backlog: 0,
    dead_letters: 0,
    ...extra,
  };
}

export async function checkin(
  app: FastifyInstance,
  probe: TestProbe,
  accounts: AccountReport[],
  conversations: ConversationReport[],
): Promise<LightMyRequestResponse> {
  const res = await signedPost(app, probe, '/probe/v1/checkin', checkinBody(accounts, conversations));
  if (res.statusCode !== 200) throw new Error(`checkin: ${res.statusCode} ${res.body}`);
  return res;
}
