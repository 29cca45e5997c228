/** Probes: enrollment tokens, registration, request-id replay table, check-in state. */
import { and, eq, gt, isNull, lt, sql } from 'drizzle-orm';
import type { Queryable } from './open.ts';
import { accounts, enrollmentTokens, probes, requestIds } from './schema.ts';

export async function createEnrollmentToken(
  q: Queryable,
  input: {
    tokenHash: string;
    usesLeft: number;
    expiresAt: Date;
    label?: string | undefined;
    replacesProbeId?: string | undefined;
  },
): Promise<{ id: string }> {
  const [row] = await q
    .insert(enrollmentTokens)
    .values({
      tokenHash: input.tokenHash,
      usesLeft: input.usesLeft,
      expiresAt: input.expiresAt,
      label: input.label ?? null,
      replacesProbeId: input.replacesProbeId ?? null,
    })
    .returning({ id: enrollmentTokens.id });
  if (!row) throw new Error('enrollment token insert returned nothing');
  return row;
}

export type RegisterResult =
  | { ok: true; probeId: string; existing: boolean; replaced: string | null }
  | { ok: false; reason: 'bad_token' | 'revoked' };

/**
 * Registration, idempotent by key: a key registered before gets its probe id back
 * (a probe that lost the answer retries), unless that probe was revoked. Otherwise it
 * consumes one use of the token and creates the probe, in one transaction; a token made
 * to replace a probe moves that probe's accounts to the new one and revokes the old.
 */
export async function registerProbe(
  q: Queryable,
  input: {
    tokenHash: string;
    publicKey: string;
    country: string;
    asn: number;
    softwareVersion: string;
    label?: string | undefined;
    now: Date;
  },
): Promise<RegisterResult> {
  try {
    return await registerOnce(q, input);
  } catch (err) {
    // The same key registered concurrently: the other transaction won; answer as a retry.
    if (err instanceof KeyTaken) return registerOnce(q, input);
    throw err;
  }
}

class KeyTaken extends Error {}

async function registerOnce(
  q: Queryable,
  input: Parameters<typeof registerProbe>[1],
): Promise<RegisterResult> {
  return q.transaction(async (tx) => {
    const [known] = await tx
      .select({ id: probes.id, revokedAt: probes.revokedAt })
      .from(probes)
      .where(eq(probes.publicKey, input.publicKey));
    if (known) {
      return known.revokedAt
        ? ({ ok: false, reason: 'revoked' } as const)
        : ({ ok: true, probeId: known.id, existing: true, replaced: null } as const);
    }
    const [token] = await tx
      .update(enrollmentTokens)
      .set({ usesLeft: sql`${enrollmentTokens.usesLeft} - 1` })
      .where(
        and(
          eq(enrollmentTokens.tokenHash, input.tokenHash),
          gt(enrollmentTokens.usesLeft, 0),
          gt(enrollmentTokens.expiresAt, input.now),
        ),
      )
      .returning({ id: enrollmentTokens.id, replacesProbeId: enrollmentTokens.replacesProbeId });
    if (!token) return { ok: false, reason: 'bad_token' } as const;
    const [probe] = await tx
      .insert(probes)
      .values({
        publicKey: input.publicKey,
        country: input.country,
        asn: input.asn,
        softwareVersion: input.softwareVersion,
        label: input.label ?? null,
        enrollmentTokenId: token.id,
      })
      .onConflictDoNothing({ target: probes.publicKey })
      .returning({ id: probes.id });
    // Rolls back the token use; the retry finds the key registered.
    if (!probe) throw new KeyTaken();
    let replaced: string | null = null;
    if (token.replacesProbeId) {
      await tx
        .update(probes)
        .set({
          replacedBy: probe.id,
          revokedAt: sql`coalesce(${probes.revokedAt}, ${input.now.toISOString()}::timestamptz)`,
        })
        .where(eq(probes.id, token.replacesProbeId));
      await tx.update(accounts).set({ probeId: probe.id }).where(eq(accounts.probeId, token.replacesProbeId));
      replaced = token.replacesProbeId;
    }
    return { ok: true, probeId: probe.id, existing: false, replaced } as const;
  });
}

export async function getProbe(
  q: Queryable,
  id: string,
): Promise<{ id: string; publicKey: string } | undefined> {
  const [row] = await q
    .select({ id: probes.id, publicKey: probes.publicKey })
    .from(probes)
    // A revoked probe is unknown to request verification: its key gets 401 from then on.
    .where(and(eq(probes.id, id), isNull(probes.revokedAt)));
  return row;
}

/** Records a signed request's id; false when it was seen before (a replay). */
export async function claimRequestId(q: Queryable, requestId: string, probeId: string): Promise<boolean> {
  const inserted = await q
    .insert(requestIds)
    .values({ requestId, probeId })
    .onConflictDoNothing()
    .returning({ id: requestIds.requestId });
  return inserted.length === 1;
}

/** Forgets request ids older than `before` (they fall outside the signature window anyway). */
export async function pruneRequestIds(q: Queryable, before: Date): Promise<number> {
  const deleted = await q
    .delete(requestIds)
    .where(lt(requestIds.seenAt, before))
    .returning({ id: requestIds.requestId });
  return deleted.length;
}

export async function recordCheckin(
  q: Queryable,
  probeId: string,
  input: {
    at: Date;
    /** Undefined: a refused value (checkin-values.ts); the stored one is kept. */
    softwareVersion?: string | undefined;
    outboxBacklog?: number | undefined;
    deadLetters?: number | undefined;
    clock?: { offsetMs: number; rttMs: number; measuredAt: Date } | undefined;
    /** Undefined: not reported (an older probe); the stored state is kept. */
    storage?: { full: boolean; code?: string | undefined } | undefined;
  },
): Promise<void> {
  await q
    .update(probes)
    .set({
      lastCheckinAt: input.at,
      // the gap since the previous check-in (the old value on the right), bounded to a day
      checkinGapMs: sql`case when ${probes.lastCheckinAt} is null then null
        else least(greatest(round(extract(epoch from (${input.at.toISOString()}::timestamptz - ${probes.lastCheckinAt})) * 1000), 0), 86400000)::int end`,
      ...(input.softwareVersion !== undefined ? { softwareVersion: input.softwareVersion } : {}),
      ...(input.outboxBacklog !== undefined ? { outboxBacklog: input.outboxBacklog } : {}),
      ...(input.deadLetters !== undefined ? { deadLetters: input.deadLetters } : {}),
      ...(input.clock
        ? {
            clockOffsetMs: input.clock.offsetMs,
            clockRttMs: input.clock.rttMs,
            clockMeasuredAt: input.clock.measuredAt,
          }
        : {}),
      ...(input.storage
        ? input.storage.full
          ? {
              storageFullSince: sql`coalesce(${probes.storageFullSince}, ${input.at.toISOString()}::timestamptz)`,
              storageCode: input.storage.code ?? null,
            }
          : { storageFullSince: null, storageCode: null }
        : {}),
    })
    .where(eq(probes.id, probeId));
}

export interface ProbeSummary {
  id: string;
  country: string;
  asn: number;
  softwareVersion: string;
  label: string | null;
  registeredAt: Date;
  lastCheckinAt: Date | null;
  clockOffsetMs: number | null;
  clockRttMs: number | null;
  outboxBacklog: number | null;
  deadLetters: number | null;
  storageFullSince: Date | null;
  revokedAt: Date | null;
  replacedBy: string | null;
}

export async function listProbes(q: Queryable): Promise<ProbeSummary[]> {
  return q
    .select({
      id: probes.id,
      country: probes.country,
      asn: probes.asn,
      softwareVersion: probes.softwareVersion,
      label: probes.label,
      registeredAt: probes.registeredAt,
      lastCheckinAt: probes.lastCheckinAt,
      clockOffsetMs: probes.clockOffsetMs,
      clockRttMs: probes.clockRttMs,
      outboxBacklog: probes.outboxBacklog,
      deadLetters: probes.deadLetters,
      storageFullSince: probes.storageFullSince,
      revokedAt: probes.revokedAt,
      replacedBy: probes.replacedBy,
    })
    .from(probes)
    .orderBy(probes.registeredAt);
}
