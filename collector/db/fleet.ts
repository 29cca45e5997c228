/** Fleet operations: revoking probes, a campaign's run state, rotated admin tokens. */
import { and, eq, gt, isNull, or, sql } from 'drizzle-orm';
import type { Queryable } from './open.ts';
import { adminTokens, campaigns, probes } from './schema.ts';

/** Revokes a probe (idempotent: the first revocation time stays); undefined when unknown. */
export async function revokeProbe(
  q: Queryable,
  id: string,
  now: Date,
): Promise<{ revokedAt: Date } | undefined> {
  const [row] = await q
    .update(probes)
    .set({ revokedAt: sql`coalesce(${probes.revokedAt}, ${now.toISOString()}::timestamptz)` })
    .where(eq(probes.id, id))
    .returning({ revokedAt: probes.revokedAt });
  return row?.revokedAt ? { revokedAt: row.revokedAt } : undefined;
}

/** Pauses or resumes a campaign (rounds are planned only while active), or stops it (ends_at). */
export async function setCampaignRunState(
  q: Queryable,
  id: string,
  change: { active: boolean } | { stopAt: Date },
): Promise<{ id: string; active: boolean; endsAt: Date | null } | undefined> {
  const set =
    'active' in change
      ? { active: change.active }
      : {
          // A campaign that already ended earlier keeps its end.
          endsAt: sql`least(coalesce(${campaigns.endsAt}, ${change.stopAt.toISOString()}::timestamptz), ${change.stopAt.toISOString()}::timestamptz)`,
          active: false,
        };
  const [row] = await q
    .update(campaigns)
    .set(set)
    .where(eq(campaigns.id, id))
    .returning({ id: campaigns.id, active: campaigns.active, endsAt: campaigns.endsAt });
  return row;
}

/** Whether a token hash is a rotated admin token still in force. */
export async function adminTokenInForce(q: Queryable, tokenHash: string, now: Date): Promise<boolean> {
  const rows = await q
    .select({ hash: adminTokens.tokenHash })
    .from(adminTokens)
    .where(
      and(
        eq(adminTokens.tokenHash, tokenHash),
        or(isNull(adminTokens.retiredAt), gt(adminTokens.retiredAt, now)),
      ),
    );
  return rows.length > 0;
}

/** Whether a token hash was retired by a rotation (at or before now). */
export async function adminTokenRetired(q: Queryable, tokenHash: string, now: Date): Promise<boolean> {
  const [row] = await q
    .select({ retiredAt: adminTokens.retiredAt })
    .from(adminTokens)
    .where(eq(adminTokens.tokenHash, tokenHash));
  return !!row?.retiredAt && row.retiredAt <= now;
}

/** Stores a new admin token and retires the one used for the request at `retireAt`. */
export async function rotateAdminToken(
  q: Queryable,
  input: { newHash: string; oldHash: string; retireAt: Date },
): Promise<void> {
  await q.transaction(async (tx) => {
    await tx.insert(adminTokens).values({ tokenHash: input.newHash });
    await tx
      .insert(adminTokens)
      .values({ tokenHash: input.oldHash, retiredAt: input.retireAt })
      .onConflictDoUpdate({
        target: adminTokens.tokenHash,
        set: {
          retiredAt: sql`least(coalesce(${adminTokens.retiredAt}, excluded.retired_at), excluded.retired_at)`,
        },
      });
  });
}
