import { type Static, Type } from 'typebox';
import {
  AdapterInfo,
  ConversationRef,
  Handle,
  LIMITS,
  Nonce,
  PlatformName,
  ProtocolVersion,
  Timestamp,
  Uuid,
} from './common.ts';
import { FailureCode } from './failures.ts';

/**
 * How the probe changed a text to make it representable (docs/decisions/010): cut to
 * LIMITS.textChars code points, NUL or lone UTF-16 surrogates replaced by U+FFFD. Absent
 * when the text is exactly as seen.
 */
export const TextChanges = Type.Array(
  Type.Union([
    Type.Literal('truncated'),
    Type.Literal('nul_replaced'),
    Type.Literal('lone_surrogate_replaced'),
  ]),
  { minItems: 1, maxItems: 3, uniqueItems: true },
);
export type TextChanges = Static<typeof TextChanges>;

const base = {
  /** Unique per event among this probe's events; ingest is idempotent on (probe, event_id). */
  event_id: Uuid,
  platform: PlatformName,
  /** The probe's own account this event is about (sender or recipient). */
  account: Handle,
  conversation: ConversationRef,
  /** Probe clock when it happened. */
  at: Timestamp,
  /** The probe's estimate of (collector clock - probe clock) when it happened, ms. */
  clock_offset_ms: Type.Number(),
  adapter: AdapterInfo,
};

/** The sender's client showed the canary as sent. */
export const SentEvent = Type.Object(
  {
    type: Type.Literal('sent'),
    ...base,
    canary_id: Uuid,
    /** Text as it was typed/sent. */
    text: Type.String({ maxLength: LIMITS.textChars }),
    text_changes: Type.Optional(TextChanges),
    /** The platform's id for the message, where it gives one. */
    platform_message_id: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);

/** The sender saw an error or notice (overt censorship, or a platform refusal). */
export const RejectedEvent = Type.Object(
  {
    type: Type.Literal('rejected'),
    ...base,
    canary_id: Uuid,
    failure: FailureCode,
    /** The notice text exactly as the sender saw it. */
    notice: Type.Optional(Type.String({ maxLength: LIMITS.textChars })),
    notice_changes: Type.Optional(TextChanges),
  },
  { additionalProperties: false },
);

/** The adapter could not run the send (login lost, browser crashed): not evidence of censorship. */
export const FailedEvent = Type.Object(
  {
    type: Type.Literal('failed'),
    ...base,
    canary_id: Uuid,
    failure: FailureCode,
    detail: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);

/** A receiving account saw a message carrying a canary nonce. */
export const ReceivedEvent = Type.Object(
  {
    type: Type.Literal('received'),
    ...base,
    nonce: Nonce,
    /** Text exactly as the recipient saw it (made representable: see `text_changes`). */
    text: Type.String({ maxLength: LIMITS.textChars }),
    text_changes: Type.Optional(TextChanges),
    /** Sender as the recipient's client showed it, where shown. */
    from: Type.Optional(Handle),
    platform_message_id: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);

export const ProbeEvent = Type.Union([SentEvent, RejectedEvent, FailedEvent, ReceivedEvent]);
export type SentEvent = Static<typeof SentEvent>;
export type RejectedEvent = Static<typeof RejectedEvent>;
export type FailedEvent = Static<typeof FailedEvent>;
export type ReceivedEvent = Static<typeof ReceivedEvent>;
export type ProbeEvent = Static<typeof ProbeEvent>;
export type ProbeEventType = ProbeEvent['type'];

/**
 * POST /probe/v1/events (signed). The envelope is validated as a whole; each event is
 * validated on its own, so one malformed event is refused without holding back the rest.
 */
export const EventsRequest = Type.Object(
  {
    protocol: ProtocolVersion,
    // Any item: one that is no event object (null, a number) is refused alone by ingest.
    events: Type.Array(Type.Unknown(), {
      minItems: 1,
      maxItems: LIMITS.eventsPerBatch,
    }),
  },
  { additionalProperties: false },
);
export type EventsRequest = { protocol: 1; events: unknown[] };

export const EventResult = Type.Object(
  {
    index: Type.Integer({ minimum: 0 }),
    event_id: Type.Optional(Type.String()),
    /**
     * stored: new and durable; duplicate: this probe sent it before; refused: invalid (see
     * reason; do not resend); ignored: acknowledged but not kept (a receipt of a nonce that
     * is no canary, past the collector's bound; do not resend).
     */
    status: Type.Union([
      Type.Literal('stored'),
      Type.Literal('duplicate'),
      Type.Literal('refused'),
      Type.Literal('ignored'),
    ]),
    /** Why it was refused, naming the field (e.g. "/events/3/at: must be date-time"). */
    reason: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type EventResult = Static<typeof EventResult>;

export const EventsResponse = Type.Object(
  {
    results: Type.Array(EventResult),
  },
  { additionalProperties: false },
);
export type EventsResponse = Static<typeof EventsResponse>;
