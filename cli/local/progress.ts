/**
 * What a running network has measured so far, read from the collector: the campaign's
 * planned canaries (admin API) and its outcomes by status (research API
 * `/api/v1/aggregation`, or the same repository query in-process while the research
 * API is not mounted).
 */
import { countByAxes } from '../../collector/db/research-aggregation.ts';
import type { AggregationResponse } from '../../protocol/index.ts';
import type { LocalNetwork } from './network.ts';

export interface Progress {
  rounds: number;
  /** Canaries planned so far (tests + controls). */
  canaries: number;
  /** Outcomes (per canary and recipient) of canaries whose sender reported. */
  outcomes: number;
  delivered: number;
  delayed: number;
  missing: number;
  altered: number;
  rejected: number;
  pending: number;
  failed: number;
}

const STATUSES = ['delivered', 'delayed', 'missing', 'altered', 'rejected', 'pending', 'failed'] as const;

export async function readProgress(net: LocalNetwork): Promise<Progress> {
  const campaign = (await net.admin.campaigns()).find((c) => c.id === net.campaign.id);
  const p: Progress = {
    rounds: campaign?.rounds ?? 0,
    canaries: campaign?.canaries ?? 0,
    outcomes: 0,
    delivered: 0,
    delayed: 0,
    missing: 0,
    altered: 0,
    rejected: 0,
    pending: 0,
    failed: 0,
  };
  let rows: Record<(typeof STATUSES)[number], number>[];
  const res = await fetch(
    `${net.collector.url}/api/v1/aggregation?group_by=campaign&campaign=${net.campaign.id}`,
  ).catch(() => undefined);
  if (res?.ok) {
    rows = ((await res.json()) as AggregationResponse).rows;
  } else {
    rows = await countByAxes(net.collector.database.db, { campaign: net.campaign.id }, ['campaign']);
  }
  for (const r of rows) {
    for (const s of STATUSES) {
      p[s] += r[s];
      p.outcomes += r[s];
    }
  }
  return p;
}

export function formatProgress(p: Progress, at = new Date()): string {
  const time = at.toISOString().slice(11, 19);
  return (
    `[${time}] rounds ${p.rounds} · canaries ${p.canaries} · sent to ${p.outcomes} recipients: ` +
    `delivered ${p.delivered} · missing ${p.missing} · delayed ${p.delayed} · altered ${p.altered} · ` +
    `rejected ${p.rejected} · pending ${p.pending}${p.failed ? ` · failed ${p.failed}` : ''}`
  );
}
