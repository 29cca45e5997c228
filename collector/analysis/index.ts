/**
 * collector/analysis: pure, deterministic analysis for silentdrop (no database, no HTTP).
 * See README.md for methods, assumptions, error rates and citations.
 */
export {
  type ChangepointOptions,
  type ChangepointResult,
  detectChanges,
  evidenceWithoutOutages,
  isOutage,
  type Segment,
  type WindowCounts,
} from './changepoint.ts';
export type { KeywordEntry } from './citizenlab-data.ts';
export {
  ddmin,
  findMinimalSubsets,
  type IsolationOptions,
  type IsolationResult,
  isolateTerms,
  type MinimiseAlgorithm,
  quickXplain,
  SizeLimitError,
} from './isolation.ts';
export { isolateText, type TextIsolationOptions, type TextIsolationResult } from './isolation-text.ts';
export {
  ContradictionError,
  type OracleCounters,
  type ProbeResult,
  type RobustOracle,
  type RobustOracleOptions,
  robustOracle,
  type TermsOracle,
  type TermsProbe,
  UnresolvedProbeError,
} from './oracle.ts';
export { noYield, type PairedRow, pairedEvidence } from './paired-evidence.ts';
export {
  isolationStep,
  type MessageRequest,
  ReplayMismatchError,
  type RoundRecord,
  replay,
  resumeScreening,
  type Step,
  screeningStep,
  textIsolationStep,
} from './resumable.ts';
export {
  DEFAULT_SCREENING_OPTIONS,
  hwangGroupSize,
  packTermSets,
  type RoundProbe,
  type ScreeningOptions,
  type ScreeningResult,
  type ScreenStatus,
  screen,
} from './screening.ts';
export {
  DEFAULT_SEQUENTIAL_DESIGN,
  INITIAL_SEQUENTIAL_STATE,
  type SequentialDecision,
  type SequentialDesign,
  type SequentialState,
  type Spending,
  sequentialLook,
  spent,
} from './sequential.ts';
export * from './stats.ts';
export {
  type ArmCounts,
  armTotal,
  buildEvidence,
  DEFAULT_JUDGE_OPTIONS,
  type Evidence,
  type FamilyMember,
  type Finding,
  type FindingKind,
  type JudgeOptions,
  judge,
  judgeAll,
  judgeAtLook,
  judgeFamily,
  judgeMember,
  type OutcomeRow,
  type Verdict,
} from './verdict.ts';
