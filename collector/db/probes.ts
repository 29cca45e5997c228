/** Probes: enrollment tokens, registration, request-id replay table, check-in state. */
import { and, eq, gt, lt, sql } from 'drizzle-orm';
import type { Queryable } from './open.ts';
import { enrollmentTokens, probes, requestIds } from './schema.ts';

export async function createEnrollmentToken(
  q: Queryable,
  input: { tokenHash: string; usesLeft: number; expiresAt: Date; label?: string | undefined },
): Promise<{ id: string }> {
  const [row] = await q
    .insert(enrollmentTokens)
    .values({
      tokenHash: input.tokenHash,
      usesLeft: input.usesLeft,
      expiresAt: input.expiresAt,
      label: input.label ?? null,
    })
    .returning({ id: enrollmentTokens.id });
  if (!row) throw new Error('enrollment token insert returned nothing');
  return row;
}

export type RegisterResult = { ok: true; probeId: string } | { ok: false; reason: 'bad_token' | 'key_taken' };

/** Consumes one use of the token and creates the probe, in one transaction. */
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
    return await q.transaction(async (tx) => {
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
        .returning({ id: enrollmentTokens.id });
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
      // The key is registered already: throwing rolls back the token use.
      if (!probe) throw new KeyTaken();
      return { ok: true, probeId: probe.id } as const;
    });
  } catch (err) {
    if (err instanceof KeyTaken) return { ok: false, reason: 'key_taken' };
    throw err;
  }
}

class KeyTaken extends Error {}

export async function getProbe(
  q: Queryable,
  id: string,
): Promise<{ id: string; publicKey: string } | undefined> {
  const [row] = await q
    .select({ id: probes.id, publicKey: probes.publicKey })
    .from(probes)
    .where(eq(probes.id, id));
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
  },
): Promise<void> {
  await q
    .update(probes)
    .set({
      lastCheckinAt: input.at,
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
    })
    .from(probes)
    .orderBy(probes.registeredAt);
}
