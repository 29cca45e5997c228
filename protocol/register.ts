import { type Static, Type } from 'typebox';
import { Asn, ProtocolVersion, Region, Uuid } from './common.ts';

/** POST /probe/v1/register: unsigned; authorised by a one-time enrollment token. */
export const RegisterRequest = Type.Object(
  {
    protocol: ProtocolVersion,
    enrollment_token: Type.String({ minLength: 16, maxLength: 256 }),
    /** Ed25519 public key, raw 32 bytes, base64 (standard alphabet, padded). */
    public_key: Type.String({ pattern: '^[A-Za-z0-9+/]{43}=$' }),
    /** Country the probe runs in; never its IP address. */
    country: Region,
    asn: Asn,
    software_version: Type.String({ minLength: 1, maxLength: 64 }),
    /** A short label the operator chose (not identifying); shown to researchers. */
    label: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);
export type RegisterRequest = Static<typeof RegisterRequest>;

export const RegisterResponse = Type.Object({ probe_id: Uuid }, { additionalProperties: false });
export type RegisterResponse = Static<typeof RegisterResponse>;
