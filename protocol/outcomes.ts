import { Type } from 'typebox';

/** Per canary and expected recipient. */
export const OUTCOME_STATUSES = [
  'pending',
  'delivered',
  'delayed',
  'missing',
  'altered',
  'rejected',
  'failed',
] as const;
export type OutcomeStatus = (typeof OUTCOME_STATUSES)[number];
export const OutcomeStatus = Type.Enum(OUTCOME_STATUSES);

export const CANARY_KINDS = ['test', 'control'] as const;
export type CanaryKind = (typeof CANARY_KINDS)[number];
export const CanaryKind = Type.Enum(CANARY_KINDS);

export const VERDICTS = ['suppressed', 'delayed', 'rejected', 'altered', 'none', 'inconclusive'] as const;
export type Verdict = (typeof VERDICTS)[number];
export const Verdict = Type.Enum(VERDICTS);

export const CAMPAIGN_MODES = ['monitor', 'screen', 'isolate'] as const;
export type CampaignMode = (typeof CAMPAIGN_MODES)[number];
export const CampaignMode = Type.Enum(CAMPAIGN_MODES);
