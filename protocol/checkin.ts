import { type Static, Type } from 'typebox';
import {
  AdapterInfo,
  ConversationKind,
  ConversationRef,
  Handle,
  Nonce,
  PlatformName,
  ProtocolVersion,
  Region,
  Timestamp,
  Uuid,
} from './common.ts';

/**
 * How many canaries an account can send, as its probe enforces it (probe/limits.ts): the
 * randomised pause between two sends, the sliding-window limits and what they still allow now,
 * the probe-wide daily budget left, and the canaries handed to the account not yet sent. The
 * collector plans no more than this before the canaries' deadlines (collector/capacity.ts;
 * docs/decisions/014). Optional: a probe that does not report it is planned with the probe's
 * default limits.
 */
export const SendCapacity = Type.Object(
  {
    pacing_min_ms: Type.Integer({ minimum: 0, maximum: 86_400_000 }),
    pacing_max_ms: Type.Integer({ minimum: 0, maximum: 86_400_000 }),
    per_minute: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
    per_hour: Type.Integer({ minimum: 0, maximum: 10_000_000 }),
    per_day: Type.Integer({ minimum: 0, maximum: 100_000_000 }),
    /** Sends each window still allows at the time of the check-in. */
    remaining_minute: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
    remaining_hour: Type.Integer({ minimum: 0, maximum: 10_000_000 }),
    remaining_day: Type.Integer({ minimum: 0, maximum: 100_000_000 }),
    /** The probe's daily budget left (shared by its accounts); absent when it has none. */
    budget_remaining: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000_000 })),
    /** Canaries handed to this account (scheduled or in its send queue) and not sent yet. */
    queued: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
    /**
     * How long a send has taken lately beyond the pause (the 90th percentile of the account's
     * last 20: the platform client's call and the probe's records), ms; absent before the first
     * send. Sends are planned a pause plus this apart.
     */
    send_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000 })),
  },
  { additionalProperties: false },
);
export type SendCapacity = Static<typeof SendCapacity>;

/** An account the probe holds. Credentials never leave the probe. */
export const AccountReport = Type.Object(
  {
    platform: PlatformName,
    handle: Handle,
    region: Region,
    adapter: AdapterInfo,
    /**
     * `active`; `quarantined` after a ban/warning; `login_required`; or `quiet`: in its quiet
     * hours (it observes, but sends nothing, so it is not planned as a sender).
     */
    state: Type.Union([
      Type.Literal('active'),
      Type.Literal('quarantined'),
      Type.Literal('login_required'),
      Type.Literal('quiet'),
    ]),
    /** What it can send (optional; see SendCapacity). */
    capacity: Type.Optional(SendCapacity),
  },
  { additionalProperties: false },
);
export type AccountReport = Static<typeof AccountReport>;

/** A conversation one of the probe's accounts is in, as the adapter sees it. */
export const ConversationReport = Type.Object(
  {
    platform: PlatformName,
    ref: ConversationRef,
    kind: ConversationKind,
    /** Handles of every member, including those of other probes. */
    members: Type.Array(Handle, { minItems: 1, maxItems: 1000 }),
    title: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);
export type ConversationReport = Static<typeof ConversationReport>;

/** The probe's last clock-offset estimate (NTP-style), reported for health views. */
export const ClockEstimate = Type.Object(
  {
    /** collector clock minus probe clock, ms. */
    offset_ms: Type.Number(),
    rtt_ms: Type.Number({ minimum: 0 }),
    measured_at: Timestamp,
  },
  { additionalProperties: false },
);
export type ClockEstimate = Static<typeof ClockEstimate>;

/**
 * Whether the probe's data folder takes writes (docs/decisions/020). `full`: a write was
 * refused (no space, quota, read-only folder); the probe takes no new canaries until it has
 * space again, and the collector hands it none. Added to protocol 1 without a version bump:
 * optional, and a collector that does not know it drops it.
 */
export const ProbeStorage = Type.Object(
  {
    state: Type.Union([Type.Literal('ok'), Type.Literal('full')]),
    /** When the probe found it full (probe clock). */
    since: Type.Optional(Timestamp),
    /** The refused write's error code. */
    code: Type.Optional(Type.Union([Type.Literal('ENOSPC'), Type.Literal('EDQUOT'), Type.Literal('EROFS')])),
  },
  { additionalProperties: false },
);
export type ProbeStorage = Static<typeof ProbeStorage>;

/** POST /probe/v1/checkin (signed). */
export const CheckinRequest = Type.Object(
  {
    protocol: ProtocolVersion,
    /** t0: probe clock when this request was sent, epoch ms. */
    t0: Type.Number(),
    software_version: Type.String({ minLength: 1, maxLength: 64 }),
    accounts: Type.Array(AccountReport, { maxItems: 200 }),
    conversations: Type.Array(ConversationReport, { maxItems: 2000 }),
    /** Events waiting in the probe's outbox; dead-lettered events separately. */
    outbox_backlog: Type.Integer({ minimum: 0 }),
    dead_letters: Type.Integer({ minimum: 0 }),
    clock: Type.Optional(ClockEstimate),
    storage: Type.Optional(ProbeStorage),
  },
  { additionalProperties: false },
);
export type CheckinRequest = Static<typeof CheckinRequest>;

/** A canary the probe must send. The probe is not told whether it is a test or a control. */
export const CanaryAssignment = Type.Object(
  {
    canary_id: Uuid,
    campaign_id: Uuid,
    platform: PlatformName,
    sender: Handle,
    conversation: ConversationRef,
    text: Type.String({ minLength: 1, maxLength: 8192 }),
    nonce: Nonce,
    /** When to send, collector clock. */
    send_at: Timestamp,
    /** A receipt after this (collector clock) counts as delayed. */
    deadline_at: Timestamp,
  },
  { additionalProperties: false },
);
export type CanaryAssignment = Static<typeof CanaryAssignment>;

/**
 * A part of a check-in the collector did not store (added to protocol 1 without a version
 * bump: present only when something was refused; probes ignore fields they do not know).
 */
export const CheckinRefusal = Type.Object(
  {
    /** JSON pointer of the refused item or value, e.g. `/conversations/3` or `/outbox_backlog`. */
    path: Type.String(),
    /** Names the field and why, e.g. `/conversations/3/title: contains a NUL character`. */
    reason: Type.String(),
  },
  { additionalProperties: false },
);
export type CheckinRefusal = Static<typeof CheckinRefusal>;

export const CheckinResponse = Type.Object(
  {
    /** t1: collector clock when the request arrived, epoch ms. */
    t1: Type.Number(),
    /** t2: collector clock when the response left, epoch ms. */
    t2: Type.Number(),
    canaries: Type.Array(CanaryAssignment),
    /** The collector asks the probe to check in again by then (collector clock). */
    next_checkin_at: Timestamp,
    /** Accounts, conversations or values that were not stored, each with its reason. */
    refused: Type.Optional(Type.Array(CheckinRefusal)),
  },
  { additionalProperties: false },
);
export type CheckinResponse = Static<typeof CheckinResponse>;
