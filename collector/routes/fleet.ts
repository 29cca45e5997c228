/**
 * Fleet operations and alerts in the admin API (registered inside adminRoutes, so the
 * admin token check applies): revoke and replace probes, pause / resume / stop
 * campaigns, rotate the admin token, webhooks.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import {
  CampaignStateResponse,
  CreateWebhookRequest,
  CreateWebhookResponse,
  IdParams,
  type ProbeHealthState,
  RevokeProbeRequest,
  RevokeProbeResponse,
  RotateAdminTokenRequest,
  RotateAdminTokenResponse,
  type WebhookInfo,
  WebhooksResponse,
} from '../../protocol/index.ts';
import { createWebhook, deleteWebhook, listWebhooks, type WebhookSummary } from '../db/alerts.ts';
import { revokeProbe, rotateAdminToken, setCampaignRunState } from '../db/fleet.ts';
import type { Db } from '../db/open.ts';
import { createEnrollmentToken, type ProbeSummary } from '../db/probes.ts';
import { SdError } from '../errors.ts';
import { generateToken, keyedHash } from '../secrets.ts';

export const DEFAULT_PROBE_SILENT_AFTER_MS = 15 * 60_000;

export interface FleetRoutesOptions {
  db: Db;
  hashKey: Buffer;
  now: () => Date;
  probeSilentAfterMs?: number | undefined;
}

/** A probe's health from what it reported at its last check-in. */
export function probeHealth(
  p: Pick<ProbeSummary, 'lastCheckinAt' | 'revokedAt' | 'outboxBacklog' | 'deadLetters' | 'storageFullSince'>,
  now: Date,
  silentAfterMs: number,
): { last_checkin_age_s: number | null; health: ProbeHealthState } {
  const age = p.lastCheckinAt
    ? Math.max(0, Math.round((now.getTime() - p.lastCheckinAt.getTime()) / 1000))
    : null;
  let health: ProbeHealthState = 'ok';
  if (p.revokedAt) health = 'revoked';
  else if (age === null) health = 'never_checked_in';
  else if (age * 1000 > silentAfterMs) health = 'silent';
  // It takes no canaries: the operator must free space on its machine.
  else if (p.storageFullSince) health = 'storage_full';
  else if ((p.deadLetters ?? 0) > 0) health = 'dead_letters';
  // More than ten batches waiting: the probe cannot upload as fast as it measures.
  else if ((p.outboxBacklog ?? 0) > 5_000) health = 'backlog';
  return { last_checkin_age_s: age, health };
}

function webhookOut(w: WebhookSummary): WebhookInfo {
  return {
    id: w.id,
    url: w.url,
    format: w.format,
    kinds: w.kinds,
    label: w.label,
    created_at: w.createdAt.toISOString(),
    delivered: w.delivered,
    pending: w.pending,
    failed: w.failed,
    last_error: w.lastError,
  };
}

export const fleetRoutes: FastifyPluginAsyncTypebox<FleetRoutesOptions> = async (app, opts) => {
  const { db, now } = opts;

  app.post(
    '/probes/:id/revoke',
    {
      schema: {
        params: IdParams,
        body: Type.Optional(RevokeProbeRequest),
        response: { 200: RevokeProbeResponse },
      },
    },
    async (req) => {
      const at = now();
      const revoked = await revokeProbe(db, req.params.id, at);
      if (!revoked) throw new SdError('SD_ERR_NOT_FOUND', `/id: no probe ${req.params.id}`);
      req.log.warn({ probe: req.params.id }, 'probe revoked');
      let replacementToken: string | null = null;
      let expiresAt: Date | null = null;
      if (req.body?.replacement) {
        replacementToken = generateToken('sdenroll');
        expiresAt = new Date(at.getTime() + (req.body.expires_in_hours ?? 168) * 3_600_000);
        await createEnrollmentToken(db, {
          tokenHash: keyedHash(opts.hashKey, replacementToken),
          usesLeft: 1,
          expiresAt,
          label: `replaces ${req.params.id}`,
          replacesProbeId: req.params.id,
        });
      }
      return {
        probe_id: req.params.id,
        revoked_at: revoked.revokedAt.toISOString(),
        replacement_token: replacementToken,
        replacement_expires_at: expiresAt ? expiresAt.toISOString() : null,
      };
    },
  );

  for (const action of ['pause', 'resume', 'stop'] as const) {
    app.post(
      `/campaigns/:id/${action}`,
      { schema: { params: IdParams, response: { 200: CampaignStateResponse } } },
      async (req) => {
        const change = action === 'stop' ? { stopAt: now() } : { active: action === 'resume' };
        const row = await setCampaignRunState(db, req.params.id, change);
        if (!row) throw new SdError('SD_ERR_NOT_FOUND', `/id: no campaign ${req.params.id}`);
        req.log.info({ campaign: row.id, action }, 'campaign run state changed');
        return { id: row.id, active: row.active, ends_at: row.endsAt ? row.endsAt.toISOString() : null };
      },
    );
  }

  app.post(
    '/admin-token/rotate',
    { schema: { body: Type.Optional(RotateAdminTokenRequest), response: { 201: RotateAdminTokenResponse } } },
    async (req, reply) => {
      const token = generateToken('sdadmin');
      const retireAt = new Date(now().getTime() + (req.body?.grace_minutes ?? 0) * 60_000);
      await rotateAdminToken(db, {
        newHash: keyedHash(opts.hashKey, token),
        oldHash: req.adminTokenHash!,
        retireAt,
      });
      req.log.warn({ retireAt }, 'admin token rotated');
      return reply.status(201).send({ token, previous_token_retires_at: retireAt.toISOString() });
    },
  );

  app.post(
    '/webhooks',
    { schema: { body: CreateWebhookRequest, response: { 201: CreateWebhookResponse } } },
    async (req, reply) => {
      let url: URL;
      try {
        url = new URL(req.body.url);
      } catch {
        throw new SdError('SD_ERR_VALIDATION', '/url: not a URL');
      }
      if (url.username || url.password) {
        throw new SdError(
          'SD_ERR_VALIDATION',
          '/url: credentials in the URL are not kept; use the signature',
        );
      }
      const secret = generateToken('sdhook');
      const input = {
        url: url.toString(),
        format: req.body.format ?? 'json',
        kinds: req.body.kinds ?? [],
        secret,
        label: req.body.label ?? null,
      };
      const { id, createdAt } = await createWebhook(db, input);
      return reply.status(201).send({
        webhook: webhookOut({
          ...input,
          id,
          createdAt,
          delivered: 0,
          pending: 0,
          failed: 0,
          lastError: null,
        }),
        secret,
      });
    },
  );

  app.get('/webhooks', { schema: { response: { 200: WebhooksResponse } } }, async () => ({
    webhooks: (await listWebhooks(db)).map(webhookOut),
  }));

  app.delete('/webhooks/:id', { schema: { params: IdParams } }, async (req, reply) => {
    if (!(await deleteWebhook(db, req.params.id))) {
      throw new SdError('SD_ERR_NOT_FOUND', `/id: no webhook ${req.params.id}`);
    }
    return reply.status(204).send();
  });
};
