/**
 * The admin API (/admin/v1/..., `authorization: Bearer <admin token>`): enrollment
 * tokens, term lists, campaigns, probes and accounts. Types and schemas only.
 */
import { type Static, Type } from 'typebox';
import {
  Asn,
  ConversationKind,
  ConversationRef,
  Handle,
  PlatformName,
  Region,
  Timestamp,
  Uuid,
} from './common.ts';
import { ProbeHealthState } from './fleet.ts';
import { CampaignMode } from './outcomes.ts';

/** POST /admin/v1/enrollment-tokens */
export const CreateEnrollmentTokenRequest = Type.Object(
  {
    /** How many probes may register with it (default 1). */
    uses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    /** Lifetime in hours (default 168, one week). */
    expires_in_hours: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 24 * 365 })),
    label: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);
export type CreateEnrollmentTokenRequest = Static<typeof CreateEnrollmentTokenRequest>;

export const EnrollmentTokenResponse = Type.Object(
  {
    id: Uuid,
    /** Shown once; the collector keeps only a keyed hash. */
    token: Type.String(),
    uses: Type.Integer(),
    expires_at: Timestamp,
  },
  { additionalProperties: false },
);
export type EnrollmentTokenResponse = Static<typeof EnrollmentTokenResponse>;

/** POST /admin/v1/term-lists?name=…  (body: text/plain, one term set a line, `a + b`). */
export const UploadTermListQuery = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128 }),
    source: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);
export type UploadTermListQuery = Static<typeof UploadTermListQuery>;

export const LineProblem = Type.Object(
  { line: Type.Integer({ minimum: 1 }), message: Type.String() },
  { additionalProperties: false },
);
export type LineProblem = Static<typeof LineProblem>;

export const TermListSummary = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    source: Type.Union([Type.String(), Type.Null()]),
    term_sets: Type.Integer({ minimum: 0 }),
    created_at: Timestamp,
  },
  { additionalProperties: false },
);
export type TermListSummary = Static<typeof TermListSummary>;

export const UploadTermListResponse = Type.Object(
  {
    term_list: TermListSummary,
    /** Lines that were not stored (bad syntax, repeats), by line number. */
    skipped: Type.Array(LineProblem),
  },
  { additionalProperties: false },
);
export type UploadTermListResponse = Static<typeof UploadTermListResponse>;

export const TermListsResponse = Type.Object(
  { term_lists: Type.Array(TermListSummary) },
  { additionalProperties: false },
);
export type TermListsResponse = Static<typeof TermListsResponse>;

/** Which conversations a campaign sends in; every given field must match. */
export const ConversationSelection = Type.Object(
  {
    platform: Type.Optional(PlatformName),
    kind: Type.Optional(Type.Union([ConversationKind, Type.Literal('any')])),
    refs: Type.Optional(Type.Array(ConversationRef, { minItems: 1, maxItems: 1000 })),
  },
  { additionalProperties: false },
);
export type ConversationSelection = Static<typeof ConversationSelection>;

/** POST /admin/v1/campaigns */
export const CreateCampaignRequest = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128 }),
    /**
     * Default `screen`: term sets packed into messages first, what the screen flags judged alone
     * (docs/decisions/014). `isolate` judges every set alone; `monitor` keeps measuring.
     */
    mode: Type.Optional(CampaignMode),
    term_list_ids: Type.Array(Uuid, { minItems: 1, maxItems: 100 }),
    conversations: ConversationSelection,
    /** Five-field cron expression (UTC), e.g. every 10 minutes. */
    cadence: Type.String({ minLength: 1, maxLength: 128 }),
    /** A receipt later than send time + this counts as delayed; none by then is missing. */
    deadline_seconds: Type.Integer({ minimum: 1, maximum: 7 * 24 * 3600 }),
    /** Most term sets tested per round (default 20); each gets a matched control. */
    term_sets_per_round: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    /** Seed for the round plans (default: random, saved). */
    seed: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    /**
     * A verdict stays `inconclusive` until each arm's evidence comes from at least this many
     * independent probes (decision 012; default 1, 2 or more recommended in production).
     */
    min_independent_probes: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    starts_at: Type.Optional(Timestamp),
    ends_at: Type.Optional(Timestamp),
  },
  { additionalProperties: false },
);
export type CreateCampaignRequest = Static<typeof CreateCampaignRequest>;

export const Campaign = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    mode: CampaignMode,
    term_list_ids: Type.Array(Uuid),
    conversations: ConversationSelection,
    cadence: Type.String(),
    deadline_seconds: Type.Integer(),
    term_sets_per_round: Type.Integer(),
    min_independent_probes: Type.Integer({ minimum: 1 }),
    seed: Type.String(),
    active: Type.Boolean(),
    starts_at: Timestamp,
    ends_at: Type.Union([Timestamp, Type.Null()]),
    created_at: Timestamp,
    rounds: Type.Integer({ minimum: 0 }),
    canaries: Type.Integer({ minimum: 0 }),
    /**
     * Term sets the latest round could not plan (e.g. no control text free of the tested
     * terms, or a term every nonce contains); they are not being measured. `conversations`
     * lists the refs it was skipped in, or `*` when no conversation could carry it.
     */
    skipped_term_sets: Type.Array(
      Type.Object(
        {
          term_set: Type.Array(Type.String()),
          reason: Type.String(),
          conversations: Type.Array(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type Campaign = Static<typeof Campaign>;

export const CampaignsResponse = Type.Object(
  { campaigns: Type.Array(Campaign) },
  { additionalProperties: false },
);
export type CampaignsResponse = Static<typeof CampaignsResponse>;

export const ProbeInfo = Type.Object(
  {
    id: Uuid,
    country: Region,
    asn: Asn,
    software_version: Type.String(),
    label: Type.Union([Type.String(), Type.Null()]),
    registered_at: Timestamp,
    last_checkin_at: Type.Union([Timestamp, Type.Null()]),
    clock_offset_ms: Type.Union([Type.Number(), Type.Null()]),
    clock_rtt_ms: Type.Union([Type.Number(), Type.Null()]),
    outbox_backlog: Type.Union([Type.Integer(), Type.Null()]),
    dead_letters: Type.Union([Type.Integer(), Type.Null()]),
    /** Since when (collector clock) the probe has reported its data folder full; null: not full. */
    storage_full_since: Type.Union([Timestamp, Type.Null()]),
    /** Seconds since the last check-in (null: never). */
    last_checkin_age_s: Type.Union([Type.Integer(), Type.Null()]),
    health: ProbeHealthState,
    revoked_at: Type.Union([Timestamp, Type.Null()]),
    replaced_by: Type.Union([Uuid, Type.Null()]),
  },
  { additionalProperties: false },
);
export type ProbeInfo = Static<typeof ProbeInfo>;

export const ProbesResponse = Type.Object({ probes: Type.Array(ProbeInfo) }, { additionalProperties: false });
export type ProbesResponse = Static<typeof ProbesResponse>;

export const AccountInfo = Type.Object(
  {
    id: Uuid,
    probe_id: Uuid,
    platform: PlatformName,
    handle: Handle,
    region: Region,
    state: Type.String(),
    adapter: Type.Object({ name: Type.String(), version: Type.String() }, { additionalProperties: false }),
    probe_country: Region,
    last_seen_at: Timestamp,
  },
  { additionalProperties: false },
);
export type AccountInfo = Static<typeof AccountInfo>;

export const AccountsResponse = Type.Object(
  { accounts: Type.Array(AccountInfo) },
  { additionalProperties: false },
);
export type AccountsResponse = Static<typeof AccountsResponse>;

/** One probe's view of a conversation (what it reported last). */
export const ConversationView = Type.Object(
  {
    probe_id: Uuid,
    kind: ConversationKind,
    title: Type.Union([Type.String(), Type.Null()]),
    members: Type.Array(Handle),
    updated_at: Timestamp,
  },
  { additionalProperties: false },
);
export type ConversationView = Static<typeof ConversationView>;

/**
 * GET /admin/v1/conversations/disagreements: conversations whose probes' views disagree on the
 * kind, or on which accounts are members (decision 012).
 */
export const ConversationDisagreement = Type.Object(
  {
    conversation_id: Uuid,
    platform: PlatformName,
    ref: ConversationRef,
    /** The kind the collector uses: the one every view last agreed on. */
    kind: ConversationKind,
    kinds_differ: Type.Boolean(),
    /**
     * `lists`: the view names another probe's account that the owner's own view does not;
     * `omits`: the view leaves out an account its owner reports as a member. Neither changes
     * the members the collector uses (each probe speaks for its own accounts).
     */
    members_differ: Type.Array(
      Type.Object(
        {
          probe_id: Uuid,
          handle: Handle,
          owner_probe_id: Uuid,
          issue: Type.Union([Type.Literal('lists'), Type.Literal('omits')]),
        },
        { additionalProperties: false },
      ),
    ),
    views: Type.Array(ConversationView),
  },
  { additionalProperties: false },
);
export type ConversationDisagreement = Static<typeof ConversationDisagreement>;

export const ConversationDisagreementsResponse = Type.Object(
  { conversations: Type.Array(ConversationDisagreement) },
  { additionalProperties: false },
);
export type ConversationDisagreementsResponse = Static<typeof ConversationDisagreementsResponse>;
