/**
 * The research API (/api/v1): query and response schemas shared by the collector and the
 * dashboard. Public and read-only; it never carries an IP address, an account handle or
 * a probe label (operators are at risk), only ids, regions, country and ASN.
 */
import { type Static, type TSchema, Type } from 'typebox';
import { Asn, PlatformName, Region, Timestamp, Uuid } from './common.ts';
import { CanaryKind, OUTCOME_STATUSES, OutcomeStatus, VERDICTS, Verdict } from './outcomes.ts';

const Nullable = <T extends TSchema>(t: T, options: { description?: string } = {}) =>
  Type.Union([t, Type.Null()], options);
const listPattern = (words: readonly string[]) => `^(${words.join('|')})(,(${words.join('|')}))*$`;

/** A term set as a key: the JSON array of its terms as stored, e.g. `["六四","天安门"]`. */
export const TermsKey = Type.String({
  minLength: 2,
  maxLength: 4096,
  description: 'a term set as the JSON array of its terms, exactly as the API returns it in `terms_key`',
});

export const AGGREGATION_AXES = [
  'minute',
  'hour',
  'day',
  'term_set',
  'sender_region',
  'recipient_region',
  'conversation_kind',
  'probe',
  'sender_probe',
  'platform',
  'kind',
  'campaign',
] as const;
export type AggregationAxis = (typeof AGGREGATION_AXES)[number];

/**
 * An instant in a query string: RFC 3339 (`date-time`), and stricter: years 1970–2999, no
 * leap second (:60), upper-case `T`/`Z`. Postgres refuses some instants the format allows
 * (year 0000), and JavaScript others (23:59:60).
 */
export const QUERY_TIMESTAMP_PATTERN =
  '^(19[7-9][0-9]|2[0-9]{3})-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$';
const QueryTimestamp = (description: string) =>
  Type.String({ format: 'date-time', pattern: QUERY_TIMESTAMP_PATTERN, description });

/** Filters every outcome query shares (outcomes, export, aggregation, latency, term sets). */
export const outcomeFilterProperties = {
  campaign: Type.Optional(Uuid),
  platform: Type.Optional(PlatformName),
  terms: Type.Optional(
    Type.String({
      minLength: 2,
      maxLength: 4096,
      description:
        'a term set as the JSON array of its terms (`terms_key`); matches final canaries only: a canary ' +
        'whose deadline has not passed or whose outcomes are pending (sealed) names no term set',
    }),
  ),
  kind: Type.Optional(CanaryKind),
  status: Type.Optional(
    Type.String({ pattern: listPattern(OUTCOME_STATUSES), description: 'comma-separated outcome statuses' }),
  ),
  verdict: Type.Optional(
    Type.String({
      pattern: listPattern(VERDICTS),
      description:
        'comma-separated verdicts: outcomes covered by a finding (term set, scope, window) with one',
    }),
  ),
  sender_region: Type.Optional(
    Type.String({ pattern: '^[A-Z]{2}(,[A-Z]{2})*$', description: 'comma-separated regions' }),
  ),
  recipient_region: Type.Optional(
    Type.String({ pattern: '^[A-Z]{2}(,[A-Z]{2})*$', description: 'comma-separated regions' }),
  ),
  conversation_kind: Type.Optional(Type.Union([Type.Literal('direct'), Type.Literal('group')])),
  probe: Type.Optional(Type.String({ format: 'uuid', description: 'the sender’s or the recipient’s probe' })),
  from: Type.Optional(QueryTimestamp('send time at or after (collector clock)')),
  to: Type.Optional(QueryTimestamp('send time before (collector clock)')),
};

export const Order = Type.Union([Type.Literal('asc'), Type.Literal('desc')]);
export type Order = Static<typeof Order>;
export const TableFormat = Type.Union([Type.Literal('json'), Type.Literal('csv')]);
export const ExportFormat = Type.Union([Type.Literal('ndjson'), Type.Literal('csv')]);

export const OutcomesQuery = Type.Object(
  {
    ...outcomeFilterProperties,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    cursor: Type.Optional(
      Type.String({ maxLength: 512, description: 'opaque: `next_cursor` of the previous page' }),
    ),
    order: Type.Optional(Order),
  },
  { additionalProperties: false },
);
export type OutcomesQuery = Static<typeof OutcomesQuery>;

/** One outcome: per canary and expected recipient, flat (the same columns in JSON, NDJSON and CSV). */
export const OutcomeRecord = Type.Object(
  {
    canary_id: Uuid,
    recipient_account_id: Uuid,
    campaign_id: Uuid,
    platform: Type.String(),
    kind: CanaryKind,
    pair_id: Uuid,
    term_set: Nullable(Type.Array(Type.String()), {
      description: 'null while the canary is sealed: its deadline has not passed or an outcome is pending',
    }),
    terms_key: Nullable(Type.String(), { description: 'null while the canary is sealed' }),
    text: Nullable(Type.String(), {
      description:
        'the text sent; null while the canary is sealed (deadline not passed or an outcome pending), so the ' +
        'public never learns which message is a canary before it is final',
    }),
    status: OutcomeStatus,
    send_at: Timestamp,
    deadline_at: Timestamp,
    received_at: Nullable(Timestamp),
    latency_ms: Nullable(Type.Integer()),
    received_text: Nullable(Type.String(), {
      description: 'the text as received; null when nothing arrived or while the canary is sealed',
    }),
    failure: Nullable(Type.String()),
    notice: Nullable(Type.String()),
    conversation_id: Uuid,
    conversation_kind: Type.String(),
    sender_account_id: Uuid,
    sender_region: Type.String(),
    sender_probe_id: Uuid,
    recipient_region: Type.String(),
    recipient_probe_id: Uuid,
    data_format_version: Type.Integer(),
    updated_at: Timestamp,
  },
  { additionalProperties: false },
);
export type OutcomeRecord = Static<typeof OutcomeRecord>;
/** Column order of CSV exports. */
export const OUTCOME_COLUMNS = Object.keys(OutcomeRecord.properties) as (keyof OutcomeRecord)[];

export const OutcomesPage = Type.Object(
  {
    outcomes: Type.Array(OutcomeRecord),
    next_cursor: Nullable(
      Type.String({ description: 'pass as `cursor` for the next page; null at the end' }),
    ),
  },
  { additionalProperties: false },
);
export type OutcomesPage = Static<typeof OutcomesPage>;

export const ExportQuery = Type.Object(
  { ...outcomeFilterProperties, format: Type.Optional(ExportFormat) },
  { additionalProperties: false },
);
export type ExportQuery = Static<typeof ExportQuery>;

export const AggregationQuery = Type.Object(
  {
    ...outcomeFilterProperties,
    group_by: Type.String({
      pattern: `^(${AGGREGATION_AXES.join('|')})(,(${AGGREGATION_AXES.join('|')}))?$`,
      description:
        'one or two comma-separated axes; `minute`/`hour`/`day` are time grains of the send time (UTC); ' +
        '`term_set` puts canaries that are not final yet (sealed) in one group with a null key',
    }),
    format: Type.Optional(TableFormat),
  },
  { additionalProperties: false },
);
export type AggregationQuery = Static<typeof AggregationQuery>;

const Interval = Type.Object({ low: Type.Number(), high: Type.Number() }, { additionalProperties: false });
export type Interval = Static<typeof Interval>;

/** Counts of one group and its rates; rates are over finalised outcomes (`n`: pending and failed excluded). */
export const GroupCounts = {
  n: Type.Integer({ description: 'finalised outcomes: delivered + delayed + missing + altered + rejected' }),
  delivered: Type.Integer(),
  delayed: Type.Integer(),
  missing: Type.Integer(),
  altered: Type.Integer(),
  rejected: Type.Integer(),
  failed: Type.Integer(),
  pending: Type.Integer(),
  missing_rate: Nullable(Type.Number({ description: 'silent suppression: missing / n' })),
  missing_interval: Nullable(Interval),
  adverse_rate: Nullable(Type.Number({ description: 'anything but delivered in time: (n − delivered) / n' })),
  adverse_interval: Nullable(Interval),
  latency_p50_ms: Nullable(Type.Number()),
  latency_p95_ms: Nullable(Type.Number()),
};

export const AggregationRow = Type.Object(
  {
    keys: Type.Array(Nullable(Type.String()), { description: 'one value per axis, in `axes` order' }),
    ...GroupCounts,
  },
  { additionalProperties: false },
);
export type AggregationRow = Static<typeof AggregationRow>;

export const AggregationResponse = Type.Object(
  {
    axes: Type.Array(Type.String()),
    confidence: Type.Number({ description: 'level of the Wilson score intervals' }),
    rows: Type.Array(AggregationRow),
  },
  { additionalProperties: false },
);
export type AggregationResponse = Static<typeof AggregationResponse>;

export const LatencyQuery = Type.Object(
  { ...outcomeFilterProperties, format: Type.Optional(TableFormat) },
  { additionalProperties: false },
);
export type LatencyQuery = Static<typeof LatencyQuery>;

/** Upper bin edges of the latency histogram, ms; the last bin is open. */
export const LATENCY_BIN_EDGES_MS = [250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000, 300_000] as const;

export const LatencyResponse = Type.Object(
  {
    quantile_error: Type.Number({
      description:
        'largest relative error of the p50…p99 quantiles: 0 when computed over every outcome; ' +
        "0.0905 when read from the rollups' latency histogram (the counts per bin are exact either way)",
    }),
    bins: Type.Array(
      Type.Object({ lo_ms: Type.Number(), hi_ms: Nullable(Type.Number()) }, { additionalProperties: false }),
    ),
    series: Type.Array(
      Type.Object(
        {
          kind: CanaryKind,
          n: Type.Integer(),
          counts: Type.Array(Type.Integer(), { description: 'arrived outcomes per bin' }),
          p50_ms: Nullable(Type.Number()),
          p90_ms: Nullable(Type.Number()),
          p95_ms: Nullable(Type.Number()),
          p99_ms: Nullable(Type.Number()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type LatencyResponse = Static<typeof LatencyResponse>;

export const TermSetsQuery = Type.Object(
  {
    ...outcomeFilterProperties,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 20_000, default: 5000 })),
  },
  { additionalProperties: false },
);
export type TermSetsQuery = Static<typeof TermSetsQuery>;

const ArmSummary = Type.Object(GroupCounts, { additionalProperties: false });
export type ArmSummary = Static<typeof ArmSummary>;

export const TermSetSummary = Type.Object(
  {
    term_set: Type.Array(Type.String()),
    terms_key: Type.String(),
    test: ArmSummary,
    control: ArmSummary,
    verdict: Nullable(Verdict),
    finding_id: Nullable(Uuid),
    onset_at: Nullable(Timestamp),
    first_sent_at: Timestamp,
    last_sent_at: Timestamp,
  },
  { additionalProperties: false },
);
export type TermSetSummary = Static<typeof TermSetSummary>;

export const TermSetsResponse = Type.Object(
  {
    confidence: Type.Number(),
    quantile_error: Type.Number({
      description:
        'largest relative error of the latency quantiles: 0 when computed over every outcome; ' +
        "0.0905 when read from the term-set rollups' histogram (the counts are exact either way)",
    }),
    term_sets: Type.Array(TermSetSummary),
  },
  { additionalProperties: false },
);
export type TermSetsResponse = Static<typeof TermSetsResponse>;

export const FindingsQuery = Type.Object(
  {
    campaign: Type.Optional(Uuid),
    platform: Type.Optional(PlatformName),
    terms: Type.Optional(TermsKey),
    verdict: outcomeFilterProperties.verdict,
    sender_region: outcomeFilterProperties.sender_region,
    recipient_region: outcomeFilterProperties.recipient_region,
    conversation_kind: outcomeFilterProperties.conversation_kind,
    from: Type.Optional(QueryTimestamp('window ends at or after')),
    to: Type.Optional(QueryTimestamp('window starts before')),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 200 })),
    cursor: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);
export type FindingsQuery = Static<typeof FindingsQuery>;

export const FindingScope = Type.Object(
  {
    platform: Nullable(Type.String()),
    sender_region: Nullable(Type.String()),
    recipient_region: Nullable(Type.String()),
    conversation_kind: Nullable(Type.String()),
  },
  { additionalProperties: false },
);

/** How many independent probes gave one arm's evidence (decision 012). */
export const ArmCorroboration = Type.Object(
  {
    probes: Type.Integer({
      minimum: 0,
      description: 'distinct probes holding a sender or recipient of the evidence',
    }),
    asns: Type.Integer({ minimum: 0, description: 'distinct networks (ASNs) of those probes' }),
    independent: Type.Integer({
      minimum: 0,
      description: 'fewest networks whose probes are on every pair: how many would all have to lie',
    }),
  },
  { additionalProperties: false },
);

export const FindingRecord = Type.Object(
  {
    id: Uuid,
    campaign_id: Nullable(Uuid),
    term_set: Type.Array(Type.String()),
    terms_key: Type.String(),
    scope: FindingScope,
    verdict: Verdict,
    onset_at: Timestamp,
    end_at: Timestamp,
    evidence: Type.Object(
      {
        test_trials: Type.Integer(),
        control_trials: Type.Integer(),
        test_rate: Nullable(Type.Number()),
        control_rate: Nullable(Type.Number()),
        interval: Nullable(Interval),
        p_value: Nullable(Type.Number()),
        q_value: Nullable(Type.Number()),
        method: Type.Union([Type.Literal('paired'), Type.Literal('screen')], {
          description:
            '`paired`: tests against their matched controls, judged by the sequential design; ' +
            '`screen`: cleared by a group-testing screen (packs carrying the set arrived intact with ' +
            'their controls; test_trials counts those packs, rates are 0 by construction)',
        }),
        independent_probes: Type.Union(
          [
            Type.Object(
              { test: ArmCorroboration, control: ArmCorroboration },
              { additionalProperties: false },
            ),
            Type.Null(),
          ],
          {
            description:
              'the probes whose accounts sent or received the test and the control evidence; null for screen clearances',
          },
        ),
      },
      { additionalProperties: false },
    ),
    settled: Type.Boolean({
      description:
        'the verdict is final for this campaign (sending for it stopped); false while data is still coming',
    }),
    minimal_term_sets: Type.Array(Type.Array(Type.String()), {
      description:
        'the smallest sub-sets of this term set with a finding of the same verdict in the same scope',
    }),
    created_at: Timestamp,
  },
  { additionalProperties: false },
);
export type FindingRecord = Static<typeof FindingRecord>;

export const FindingsResponse = Type.Object(
  { findings: Type.Array(FindingRecord), next_cursor: Nullable(Type.String()) },
  { additionalProperties: false },
);
export type FindingsResponse = Static<typeof FindingsResponse>;

export const ProbeHealth = Type.Object(
  {
    id: Uuid,
    country: Region,
    asn: Asn,
    software_version: Type.String(),
    registered_at: Timestamp,
    last_checkin_at: Nullable(Timestamp),
    clock_offset_ms: Nullable(Type.Number()),
    clock_rtt_ms: Nullable(Type.Number()),
    clock_measured_at: Nullable(Timestamp),
    outbox_backlog: Nullable(Type.Integer()),
    dead_letters: Nullable(Type.Integer()),
    /** Since when (collector clock) the probe has reported its data folder full: it takes no canaries meanwhile. */
    storage_full_since: Nullable(Timestamp),
    accounts: Type.Array(
      Type.Object(
        {
          id: Uuid,
          platform: Type.String(),
          region: Type.String(),
          state: Type.String(),
          adapter_name: Type.String(),
          adapter_version: Type.String(),
          last_seen_at: Timestamp,
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type ProbeHealth = Static<typeof ProbeHealth>;

export const ProbesHealthResponse = Type.Object(
  { probes: Type.Array(ProbeHealth) },
  { additionalProperties: false },
);
export type ProbesHealthResponse = Static<typeof ProbesHealthResponse>;

export const ApiError = Type.Object(
  { statusCode: Type.Integer(), code: Type.String(), message: Type.String() },
  { additionalProperties: false },
);
