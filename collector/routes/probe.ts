/** The probe API: /probe/v1/register (enrollment token), /checkin and /events (signed). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  CheckinRequest,
  CheckinResponse,
  EventsRequest,
  EventsResponse,
  LIMITS,
  RegisterRequest,
  RegisterResponse,
} from '../../protocol/index.ts';
import { publicKeyFromBase64 } from '../../protocol/signing.ts';
import { assignCanaries, recordProbeState } from '../checkin.ts';
import type { Db } from '../db/open.ts';
import { registerProbe } from '../db/probes.ts';
import { SdError } from '../errors.ts';
import type { AuthFailureLimiter } from '../http/auth-failures.ts';
import { throwBodyError } from '../http/body.ts';
import { probeAuthHooks } from '../http/probe-auth.ts';
import { DEFAULT_PROBE_RATE_LIMIT, type RateLimitOptions, registerRateLimit } from '../http/rate-limit.ts';
import { ingestEvents } from '../ingest.ts';
import { noteUnknownNonceReceipts } from '../metrics.ts';
import { keyedHash } from '../secrets.ts';

declare module 'fastify' {
  interface FastifyRequest {
    arrivedAtMs: number;
  }
}

export interface ProbeRoutesOptions {
  db: Db;
  hashKey: Buffer;
  checkinIntervalMs: number;
  now: () => Date;
  /**
   * Called before canaries are handed out, with the probe checking in (starts a round planning);
   * not waited for: a planning of hundreds of term sets takes seconds, and a probe whose check-in
   * waits that long skips its next ones (decision 024).
   */
  onCheckin?: (now: Date, probeId: string) => void;
  /** Requests per probe (enrollment: per address) and window; default 1,200 a minute. */
  rateLimit?: RateLimitOptions | undefined;
  /** Counts refused requests per address HMAC and answers 429 past the limit, before anything else. */
  authFailures: AuthFailureLimiter;
}

export const probeRoutes: FastifyPluginAsyncTypebox<ProbeRoutesOptions> = async (app, opts) => {
  const { db, now } = opts;
  app.decorateRequest('probeAuth', null);
  app.decorateRequest('probeAuthPending', null);
  app.decorateRequest('arrivedAtMs', 0);
  // First: an address that keeps failing is refused before its headers are even looked at.
  opts.authFailures.register(app);
  await registerRateLimit(app, opts.hashKey, opts.rateLimit ?? DEFAULT_PROBE_RATE_LIMIT, 'probe');
  // t1 of the NTP exchange: as close to the request's arrival as the app can see.
  app.addHook('onRequest', async (req) => {
    req.arrivedAtMs = now().getTime();
  });

  app.post(
    '/register',
    {
      bodyLimit: LIMITS.probeBodyBytes,
      preValidation: throwBodyError,
      schema: { body: RegisterRequest, response: { 200: RegisterResponse, 201: RegisterResponse } },
    },
    async (req, reply) => {
      try {
        publicKeyFromBase64(req.body.public_key);
      } catch {
        throw new SdError('SD_ERR_VALIDATION', '/public_key: not an Ed25519 public key');
      }
      const result = await registerProbe(db, {
        tokenHash: keyedHash(opts.hashKey, req.body.enrollment_token),
        publicKey: req.body.public_key,
        country: req.body.country,
        asn: req.body.asn,
        softwareVersion: req.body.software_version,
        label: req.body.label,
        now: now(),
      });
      if (!result.ok && result.reason === 'bad_token') {
        throw new SdError('SD_ERR_ENROLLMENT_TOKEN', '/enrollment_token: unknown, used up or expired');
      }
      if (!result.ok) {
        throw new SdError(
          'SD_ERR_PROBE_REVOKED',
          '/public_key: this probe was revoked; make a new key and enrol again',
        );
      }
      if (result.existing) return reply.status(200).send({ probe_id: result.probeId });
      req.log.info(
        {
          probe: result.probeId,
          country: req.body.country,
          asn: req.body.asn,
          replaced: result.replaced ?? undefined,
        },
        'probe registered',
      );
      return reply.status(201).send({ probe_id: result.probeId });
    },
  );

  // Headers, clock and probe are checked in onRequest, the signature while the body is parsed
  // (before JSON.parse): an unsigned or foreign request is refused before its body is read.
  const auth = probeAuthHooks(db, now);

  app.post(
    '/checkin',
    {
      bodyLimit: LIMITS.probeBodyBytes,
      onRequest: auth.checkProbeHeaders,
      preValidation: [auth.requireVerified, throwBodyError],
      schema: { body: CheckinRequest, response: { 200: CheckinResponse } },
    },
    async (req) => {
      const t1 = req.arrivedAtMs;
      const auth = req.probeAuth!;
      let refused: Awaited<ReturnType<typeof recordProbeState>>['refused'];
      try {
        ({ refused } = await recordProbeState(db, auth, req.body, new Date(t1)));
      } catch (err) {
        // checkin.ts names the accounts; the answer must not (other probes' handles).
        if (!(err instanceof SdError) || err.code !== 'SD_ERR_FOREIGN_ACCOUNT') throw err;
        req.log.info({ probe: auth.probeId }, 'foreign accounts refused');
        throw new SdError(
          'SD_ERR_FOREIGN_ACCOUNT',
          'accounts: some of the accounts named belong to another probe; nothing was stored',
        );
      }
      if (refused.length > 0) req.log.warn({ probe: auth.probeId, refused }, 'check-in items refused');
      opts.onCheckin?.(new Date(t1), auth.probeId);
      // A probe whose data folder is full cannot journal a hand-out (decision 020): it gets
      // none, and the canaries stay unassigned until a check-in says it has space again.
      const full = req.body.storage?.state === 'full';
      if (full)
        req.log.warn(
          { probe: auth.probeId, storage: req.body.storage },
          'probe data folder full; no canaries',
        );
      // Handed out as of now, not as of the request's arrival: recording the probe's state waits
      // for the database, which a busy collector's sweep may hold for a while, and a canary whose
      // deadline passed meanwhile is no use to the probe (it could only report it
      // `deadline_missed`).
      const canaries = full
        ? []
        : await assignCanaries(
            db,
            auth.probeId,
            new Date(Math.max(t1, now().getTime())),
            opts.checkinIntervalMs,
          );
      const t2 = now().getTime();
      return {
        t1,
        t2,
        canaries,
        next_checkin_at: new Date(t2 + opts.checkinIntervalMs).toISOString(),
        ...(refused.length > 0 ? { refused } : {}),
      };
    },
  );

  app.post(
    '/events',
    {
      bodyLimit: LIMITS.probeBodyBytes,
      onRequest: auth.checkProbeHeaders,
      preValidation: [auth.requireVerified, throwBodyError],
      schema: { body: EventsRequest, response: { 200: EventsResponse } },
    },
    async (req) => {
      const auth = req.probeAuth!;
      const outcome = await ingestEvents(db, auth, req.body.events, now());
      if (outcome.kind === 'replay') {
        throw new SdError('SD_ERR_AUTH_REPLAY', 'x-sd-request-id: this request was seen before');
      }
      if (outcome.kind === 'forbidden') {
        // Never name the accounts: their handles belong to other probes' operators.
        req.log.info({ probe: auth.probeId, accounts: outcome.accounts.length }, 'foreign accounts refused');
        throw new SdError(
          'SD_ERR_FOREIGN_ACCOUNT',
          `events: ${outcome.accounts.length} of the accounts named belong to another probe; nothing was stored`,
        );
      }
      noteUnknownNonceReceipts(req, outcome.unknownNonce);
      const stored = outcome.results.filter((r) => r.status === 'stored').length;
      req.log.info({ probe: auth.probeId, events: outcome.results.length, stored }, 'events ingested');
      return { results: outcome.results };
    },
  );
};
