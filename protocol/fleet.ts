/**
 * Fleet operations and alerts in the admin API (/admin/v1/...): revoking and replacing
 * probes, pausing and stopping campaigns, rotating the admin token, and webhooks.
 * Types and schemas only.
 */
import { type Static, Type } from 'typebox';
import { Timestamp, Uuid } from './common.ts';

/** How a probe looks from the collector: derived from its last check-in (fleet.ts). */
export const ProbeHealthState = Type.Union([
  Type.Literal('ok'),
  Type.Literal('never_checked_in'),
  Type.Literal('silent'),
  Type.Literal('backlog'),
  Type.Literal('dead_letters'),
  /** The probe reports its data folder full: it takes no canaries until it has space (decision 020). */
  Type.Literal('storage_full'),
  Type.Literal('revoked'),
]);
export type ProbeHealthState = Static<typeof ProbeHealthState>;

export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });
export type IdParams = Static<typeof IdParams>;

/** POST /admin/v1/probes/:id/revoke */
export const RevokeProbeRequest = Type.Object(
  {
    /** Also make an enrollment token for a replacement that takes over this probe's accounts. */
    replacement: Type.Optional(Type.Boolean()),
    /** Lifetime of the replacement token in hours (default 168). */
    expires_in_hours: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 24 * 365 })),
  },
  { additionalProperties: false },
);
export type RevokeProbeRequest = Static<typeof RevokeProbeRequest>;

export const RevokeProbeResponse = Type.Object(
  {
    probe_id: Uuid,
    revoked_at: Timestamp,
    /** Shown once: a single-use enrollment token whose probe takes over the accounts. */
    replacement_token: Type.Union([Type.String(), Type.Null()]),
    replacement_expires_at: Type.Union([Timestamp, Type.Null()]),
  },
  { additionalProperties: false },
);
export type RevokeProbeResponse = Static<typeof RevokeProbeResponse>;

/** POST /admin/v1/campaigns/:id/{pause,resume,stop} */
export const CampaignStateResponse = Type.Object(
  { id: Uuid, active: Type.Boolean(), ends_at: Type.Union([Timestamp, Type.Null()]) },
  { additionalProperties: false },
);
export type CampaignStateResponse = Static<typeof CampaignStateResponse>;

/** POST /admin/v1/admin-token/rotate */
export const RotateAdminTokenRequest = Type.Object(
  {
    /** Minutes the token used for this request keeps working (default 0: at once). */
    grace_minutes: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 24 * 60 })),
  },
  { additionalProperties: false },
);
export type RotateAdminTokenRequest = Static<typeof RotateAdminTokenRequest>;

export const RotateAdminTokenResponse = Type.Object(
  {
    /** Shown once; the collector keeps a keyed hash. */
    token: Type.String(),
    /** When the token used for the request stops working. */
    previous_token_retires_at: Timestamp,
  },
  { additionalProperties: false },
);
export type RotateAdminTokenResponse = Static<typeof RotateAdminTokenResponse>;

export const AlertKind = Type.Union([
  Type.Literal('finding_settled'),
  Type.Literal('finding_ended'),
  Type.Literal('probe_silent'),
  Type.Literal('dead_letters'),
  Type.Literal('probe_storage_full'),
]);
export type AlertKind = Static<typeof AlertKind>;

export const WebhookFormat = Type.Union([
  Type.Literal('json'),
  Type.Literal('slack'),
  Type.Literal('matrix'),
]);
export type WebhookFormat = Static<typeof WebhookFormat>;

/** POST /admin/v1/webhooks */
export const CreateWebhookRequest = Type.Object(
  {
    url: Type.String({ maxLength: 2048, pattern: '^https?://' }),
    /** json (default): the alert as JSON; slack: { text }; matrix: { text, html } (hookshot). */
    format: Type.Optional(WebhookFormat),
    /** Alert kinds to deliver (default: all). */
    kinds: Type.Optional(Type.Array(AlertKind, { maxItems: 5, uniqueItems: true })),
    label: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);
export type CreateWebhookRequest = Static<typeof CreateWebhookRequest>;

export const WebhookInfo = Type.Object(
  {
    id: Uuid,
    url: Type.String(),
    format: WebhookFormat,
    kinds: Type.Array(AlertKind),
    label: Type.Union([Type.String(), Type.Null()]),
    created_at: Timestamp,
    delivered: Type.Integer(),
    pending: Type.Integer(),
    failed: Type.Integer(),
    last_error: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);
export type WebhookInfo = Static<typeof WebhookInfo>;

export const CreateWebhookResponse = Type.Object(
  {
    webhook: WebhookInfo,
    /** Shown once: the HMAC-SHA256 key of the x-silentdrop-signature header. */
    secret: Type.String(),
  },
  { additionalProperties: false },
);
export type CreateWebhookResponse = Static<typeof CreateWebhookResponse>;

export const WebhooksResponse = Type.Object(
  { webhooks: Type.Array(WebhookInfo) },
  { additionalProperties: false },
);
export type WebhooksResponse = Static<typeof WebhooksResponse>;

/** POST /admin/v1/retention/run: one run of the retention job now (decision 017). */
export const RunRetentionRequest = Type.Object(
  {
    /** Count what a run would prune (each count up to 100,000), delete nothing. */
    dry_run: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type RunRetentionRequest = Static<typeof RunRetentionRequest>;

const Count = Type.Integer({ minimum: 0 });

export const RetentionReport = Type.Object(
  {
    dry_run: Type.Boolean(),
    /** The collector's settings (0: that kind is kept forever). */
    event_retention_days: Count,
    lookalike_retention_days: Count,
    /** Canaries whose events were (or would be) deleted. */
    canaries: Count,
    canary_events: Count,
    /** Events that arrived for already pruned canaries, deleted (0 in a dry run). */
    late_events: Count,
    lookalike_receipts: Count,
    /** Canaries left for a later run: their outcomes were being derived (0 in a dry run). */
    skipped: Count,
    /** Dry run: a count reached 100,000; there are at least that many. */
    capped: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type RetentionReport = Static<typeof RetentionReport>;
