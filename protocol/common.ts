import { type Static, Type } from 'typebox';
import { NONCE_SCHEMA_PATTERN } from './nonce.ts';

/** Wire protocol version; a change of meaning bumps it. */
export const PROTOCOL_VERSION = 1 as const;
/** Version of the measurement record format stored with every event and outcome. */
export const DATA_FORMAT_VERSION = 1 as const;

export const ProtocolVersion = Type.Literal(PROTOCOL_VERSION);

export const Uuid = Type.String({ format: 'uuid' });
/** RFC 3339 timestamp with milliseconds, e.g. 2026-06-04T00:00:00.000Z. */
export const Timestamp = Type.String({ format: 'date-time' });
/** ISO 3166-1 alpha-2 country or registration region, upper case. */
export const Region = Type.String({ pattern: '^[A-Z]{2}$' });
/** Autonomous system number of the probe's network (never its IP address). */
export const Asn = Type.Integer({ minimum: 0, maximum: 4294967295 });
/** Platform key: matches an adapter folder name (e.g. "testbed", "xmpp"). */
export const PlatformName = Type.String({ pattern: '^[a-z][a-z0-9_-]{0,39}$' });
/** An account's handle on its platform (user name, JID, ...). */
export const Handle = Type.String({ minLength: 1, maxLength: 256 });
/** A conversation's id on its platform, as the adapter reports it. */
export const ConversationRef = Type.String({ minLength: 1, maxLength: 256 });

export const ConversationKind = Type.Union([Type.Literal('direct'), Type.Literal('group')]);
export type ConversationKind = Static<typeof ConversationKind>;

export const AdapterInfo = Type.Object(
  {
    name: PlatformName,
    version: Type.String({ minLength: 1, maxLength: 64 }),
    /** Version of the platform client the adapter drives, where known. */
    client_version: Type.Optional(Type.String({ maxLength: 128 })),
  },
  { additionalProperties: false },
);
export type AdapterInfo = Static<typeof AdapterInfo>;

/**
 * The first nonce form (`sd` + 12 of [a-z0-9]), still recognised so stored data matches.
 * To find any nonce in text use `findNonce` (./nonce.ts); new nonces take several forms.
 */
export const NONCE_PATTERN = /\bsd[a-z0-9]{12}\b/;
/** A nonce of any form (./nonce.ts); they mark a message as a canary. */
export const Nonce = Type.String({ pattern: NONCE_SCHEMA_PATTERN });

/** Limits that both sides enforce. */
export const LIMITS = {
  /** Most events in one POST /probe/v1/events batch. */
  eventsPerBatch: 500,
  /** Largest request body the probe API accepts, in bytes. */
  probeBodyBytes: 1024 * 1024,
  /** Longest message text carried in an event. */
  textChars: 8192,
  /** A signed request's timestamp may differ from the collector's clock by this much. */
  signatureWindowMs: 5 * 60 * 1000,
} as const;
