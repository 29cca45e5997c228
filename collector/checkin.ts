/**
 * POST /probe/v1/checkin, after the signature is verified: records the probe's accounts,
 * conversations and clock estimate, materialises due campaign rounds, and answers with
 * the canaries the probe must send before its next check-in.
 */
import type { CanaryAssignment, CheckinRefusal, CheckinRequest } from '../protocol/index.ts';
import { screenCheckin } from './checkin-values.ts';
import { recordConversationViews, upsertAccounts } from './db/accounts.ts';
import { takeDueCanaries } from './db/canaries.ts';
import { recordSendCapacity } from './db/capacity.ts';
import type { Db } from './db/open.ts';
import { claimRequestId, recordCheckin } from './db/probes.ts';
import { SdError } from './errors.ts';
import type { ProbeAuth } from './http/probe-auth.ts';

/**
 * Stores what the check-in holds that can be stored (checkin-values.ts) and returns what was
 * refused. Conversations are stored as this probe's own views (decision 012).
 */
export async function recordProbeState(
  db: Db,
  auth: ProbeAuth,
  body: CheckinRequest,
  now: Date,
): Promise<{ refused: CheckinRefusal[] }> {
  const ok = screenCheckin(body, now);
  await db.transaction(async (tx) => {
    if (!(await claimRequestId(tx, auth.requestId, auth.probeId))) {
      throw new SdError('SD_ERR_AUTH_REPLAY', 'x-sd-request-id: this request was seen before');
    }
    const { foreign } = await upsertAccounts(
      tx,
      auth.probeId,
      ok.accounts.map((a) => ({
        platform: a.platform,
        handle: a.handle,
        region: a.region,
        adapterName: a.adapter.name,
        adapterVersion: a.adapter.version,
        clientVersion: a.adapter.client_version,
        state: a.state,
      })),
    );
    if (foreign.length > 0) {
      throw new SdError(
        'SD_ERR_FOREIGN_ACCOUNT',
        `accounts: ${foreign.map((a) => `${a.platform}/${a.handle}`).join(', ')} belong to another probe`,
      );
    }
    // Send budgets of the accounts kept (decision 014); refused ones are not touched.
    await recordSendCapacity(tx, auth.probeId, ok.accounts, now);
    await recordConversationViews(
      tx,
      auth.probeId,
      ok.conversations.map((c) => ({
        platform: c.platform,
        ref: c.ref,
        kind: c.kind,
        title: c.title,
        members: c.members,
      })),
    );
    await recordCheckin(tx, auth.probeId, {
      at: now,
      softwareVersion: ok.softwareVersion,
      outboxBacklog: ok.outboxBacklog,
      deadLetters: ok.deadLetters,
      clock: ok.clock && {
        offsetMs: ok.clock.offset_ms,
        rttMs: ok.clock.rtt_ms,
        measuredAt: new Date(ok.clock.measured_at),
      },
      storage: body.storage && { full: body.storage.state === 'full', code: body.storage.code },
    });
  });
  return { refused: ok.refused };
}

export async function assignCanaries(
  db: Db,
  probeId: string,
  now: Date,
  intervalMs: number,
): Promise<CanaryAssignment[]> {
  const due = await takeDueCanaries(db, probeId, now, new Date(now.getTime() + intervalMs));
  return due.map((c) => ({
    canary_id: c.canaryId,
    campaign_id: c.campaignId,
    platform: c.platform,
    sender: c.sender,
    conversation: c.conversation,
    text: c.text,
    nonce: c.nonce,
    send_at: c.sendAt,
    deadline_at: c.deadlineAt,
  }));
}
