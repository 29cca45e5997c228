/**
 * The collector's Postgres schema (drizzle pg-core). `npx drizzle-kit generate` turns
 * changes here into SQL in migrations/; never edit a landed migration.
 *
 * Vocabulary columns are text with CHECK constraints (union types on the TS side, no
 * Postgres enums, so adding a value is a plain migration). Times are timestamptz on
 * the collector clock unless a column says otherwise.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uuid,
} from 'drizzle-orm/pg-core';

const tstz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
const createdAt = () => tstz('created_at').notNull().defaultNow();

export const enrollmentTokens = pgTable('enrollment_tokens', {
  id: uuid('id').primaryKey().defaultRandom(),
  /** HMAC-SHA256 of the token under the collector's hashing key; the token itself is never stored. */
  tokenHash: text('token_hash').notNull().unique(),
  label: text('label'),
  usesLeft: integer('uses_left').notNull(),
  expiresAt: tstz('expires_at').notNull(),
  /** A probe that registers with this token replaces that (revoked) probe and takes over its accounts. */
  replacesProbeId: uuid('replaces_probe_id'),
  createdAt: createdAt(),
});

export const probes = pgTable('probes', {
  id: uuid('id').primaryKey().defaultRandom(),
  /** Ed25519 public key, raw 32 bytes base64. */
  publicKey: text('public_key').notNull().unique(),
  country: text('country').notNull(),
  asn: bigint('asn', { mode: 'number' }).notNull(),
  softwareVersion: text('software_version').notNull(),
  label: text('label'),
  enrollmentTokenId: uuid('enrollment_token_id').references(() => enrollmentTokens.id),
  registeredAt: tstz('registered_at').notNull().defaultNow(),
  lastCheckinAt: tstz('last_checkin_at'),
  /**
   * Collector-clock ms between its last two check-ins (null before the second): when it will
   * hear of a canary planned now (follow-ups are due at its next check-in, decision 029).
   */
  checkinGapMs: integer('checkin_gap_ms'),
  /** Reported clock estimate: collector clock minus probe clock, ms. */
  clockOffsetMs: doublePrecision('clock_offset_ms'),
  clockRttMs: doublePrecision('clock_rtt_ms'),
  clockMeasuredAt: tstz('clock_measured_at'),
  outboxBacklog: integer('outbox_backlog'),
  deadLetters: integer('dead_letters'),
  /** First check-in (collector clock) of the run of check-ins reporting the data folder full; null: not full. */
  storageFullSince: tstz('storage_full_since'),
  /** The refused write's error code the probe reported with `full` (ENOSPC, EDQUOT, EROFS). */
  storageCode: text('storage_code'),
  /** Revoked probes' signed requests get 401 from then on (fleet.ts). */
  revokedAt: tstz('revoked_at'),
  /** The probe that took over this one's accounts (an enrollment token with replaces_probe_id). */
  replacedBy: uuid('replaced_by'),
});

/**
 * Admin tokens made by rotation (keyed hashes). The configured token (env or the data
 * folder's admin-token file) works until a rotation retires it: then its hash is here
 * with retired_at set.
 */
export const adminTokens = pgTable('admin_tokens', {
  tokenHash: text('token_hash').primaryKey(),
  createdAt: createdAt(),
  /** The token stops working at this time (rotation with a grace period sets it ahead). */
  retiredAt: tstz('retired_at'),
});

/** Alert receivers (alerts.ts): generic JSON, or Slack- / Matrix-hookshot-compatible bodies. */
export const webhooks = pgTable(
  'webhooks',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    url: text('url').notNull(),
    format: text('format').notNull(),
    /** Alert kinds this receiver wants (empty: all). */
    kinds: text('kinds').array().notNull().default(sql`'{}'::text[]`),
    /** HMAC-SHA256 key of the x-silentdrop-signature header (shown once at creation). */
    secret: text('secret').notNull(),
    label: text('label'),
    createdAt: createdAt(),
  },
  (t) => [check('webhooks_format_check', sql`${t.format} in ('json', 'slack', 'matrix')`)],
);

/** One row per thing worth telling someone; dedupe_key makes detection idempotent. */
export const alerts = pgTable(
  'alerts',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    kind: text('kind').notNull(),
    dedupeKey: text('dedupe_key').notNull().unique(),
    payload: jsonb('payload').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    check(
      'alerts_kind_check',
      sql`${t.kind} in ('finding_settled', 'finding_ended', 'probe_silent', 'dead_letters', 'probe_storage_full')`,
    ),
  ],
);

/** The delivery of one alert to one webhook: retried with backoff until delivered or given up. */
export const alertDeliveries = pgTable(
  'alert_deliveries',
  {
    alertId: uuid('alert_id')
      .notNull()
      .references(() => alerts.id, { onDelete: 'cascade' }),
    webhookId: uuid('webhook_id')
      .notNull()
      .references(() => webhooks.id, { onDelete: 'cascade' }),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: tstz('next_attempt_at').notNull().defaultNow(),
    deliveredAt: tstz('delivered_at'),
    gaveUpAt: tstz('gave_up_at'),
    lastError: text('last_error'),
  },
  (t) => [
    primaryKey({ columns: [t.alertId, t.webhookId] }),
    index('alert_deliveries_due_idx')
      .on(t.nextAttemptAt)
      .where(sql`delivered_at is null and gave_up_at is null`),
  ],
);

export const accounts = pgTable(
  'accounts',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    probeId: uuid('probe_id')
      .notNull()
      .references(() => probes.id),
    platform: text('platform').notNull(),
    handle: text('handle').notNull(),
    /** Registration region (ISO 3166-1 alpha-2). */
    region: text('region').notNull(),
    adapterName: text('adapter_name').notNull(),
    adapterVersion: text('adapter_version').notNull(),
    clientVersion: text('client_version'),
    state: text('state').notNull(),
    /** What the account can send, as its probe last reported it (protocol SendCapacity); null: never reported. */
    capacity: jsonb('capacity'),
    capacityAt: tstz('capacity_at'),
    firstSeenAt: tstz('first_seen_at').notNull().defaultNow(),
    lastSeenAt: tstz('last_seen_at').notNull().defaultNow(),
  },
  (t) => [
    unique('accounts_platform_handle_key').on(t.platform, t.handle),
    index('accounts_probe_idx').on(t.probeId),
    check('accounts_state_check', sql`${t.state} in ('active', 'quarantined', 'login_required', 'quiet')`),
  ],
);

export const conversations = pgTable(
  'conversations',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    platform: text('platform').notNull(),
    ref: text('ref').notNull(),
    kind: text('kind').notNull(),
    title: text('title'),
    firstSeenAt: tstz('first_seen_at').notNull().defaultNow(),
    updatedAt: tstz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    unique('conversations_platform_ref_key').on(t.platform, t.ref),
    check('conversations_kind_check', sql`${t.kind} in ('direct', 'group')`),
  ],
);

/** Members by handle: a member may be an account of a probe that has not checked in yet. */
export const conversationMembers = pgTable(
  'conversation_members',
  {
    conversationId: uuid('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    handle: text('handle').notNull(),
    seenAt: tstz('seen_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.conversationId, t.handle] })],
);

/**
 * Each probe's own view of a conversation (decision 012): what it reported last. The
 * `conversations` row and `conversation_members` are derived from these views: kind when
 * every view agrees, members = the accounts each probe reports for itself.
 */
export const conversationViews = pgTable(
  'conversation_views',
  {
    conversationId: uuid('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    probeId: uuid('probe_id')
      .notNull()
      .references(() => probes.id, { onDelete: 'cascade' }),
    kind: text('kind').notNull(),
    title: text('title'),
    /** Handles as this probe reported them (its own accounts and others'). */
    members: text('members').array().notNull(),
    firstSeenAt: tstz('first_seen_at').notNull().defaultNow(),
    updatedAt: tstz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.conversationId, t.probeId] }),
    index('conversation_views_probe_idx').on(t.probeId),
    check('conversation_views_kind_check', sql`${t.kind} in ('direct', 'group')`),
  ],
);

export const termLists = pgTable('term_lists', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull().unique(),
  source: text('source'),
  createdAt: createdAt(),
});

export const terms = pgTable(
  'terms',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    termListId: uuid('term_list_id')
      .notNull()
      .references(() => termLists.id, { onDelete: 'cascade' }),
    /** Line in the uploaded file (1-based). */
    line: integer('line').notNull(),
    /** The term set: NFC-normalised, otherwise verbatim. */
    termSet: text('term_set').array().notNull(),
  },
  (t) => [unique('terms_list_line_key').on(t.termListId, t.line)],
);

export const campaigns = pgTable(
  'campaigns',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    mode: text('mode').notNull(),
    termListIds: uuid('term_list_ids').array().notNull(),
    /** Which conversations: { platform?, kind?, refs? } (see protocol/admin.ts). */
    conversationSelection: jsonb('conversation_selection').notNull(),
    cadenceCron: text('cadence_cron').notNull(),
    deadlineSeconds: integer('deadline_seconds').notNull(),
    /** Term sets per round (at most); the planner samples when the lists are longer. */
    termSetsPerRound: integer('term_sets_per_round').notNull(),
    /** A verdict stays `inconclusive` until this many independent probes gave each arm's evidence (decision 012). */
    minIndependentProbes: integer('min_independent_probes').notNull().default(1),
    seed: text('seed').notNull(),
    active: boolean('active').notNull().default(true),
    startsAt: tstz('starts_at').notNull().defaultNow(),
    endsAt: tstz('ends_at'),
    createdAt: createdAt(),
  },
  (t) => [check('campaigns_mode_check', sql`${t.mode} in ('monitor', 'screen', 'isolate')`)],
);

export const rounds = pgTable(
  'rounds',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    campaignId: uuid('campaign_id')
      .notNull()
      .references(() => campaigns.id, { onDelete: 'cascade' }),
    roundAt: tstz('round_at').notNull(),
    seed: text('seed').notNull(),
    rngAlgorithm: text('rng_algorithm').notNull(),
    /** Term sets the planner had to leave out of this round, with the reason (rounds.ts). */
    skipped: jsonb('skipped').notNull().default([]),
    createdAt: createdAt(),
  },
  (t) => [unique('rounds_campaign_round_at_key').on(t.campaignId, t.roundAt)],
);

export const canaries = pgTable(
  'canaries',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    campaignId: uuid('campaign_id')
      .notNull()
      .references(() => campaigns.id, { onDelete: 'cascade' }),
    roundId: uuid('round_id').references(() => rounds.id, { onDelete: 'cascade' }),
    kind: text('kind').notNull(),
    /** Links a test to its control (both rows carry the same pair id). */
    pairId: uuid('pair_id').notNull(),
    /** The pair's tested term set (the same on the test and its control). */
    termSet: text('term_set').array().notNull(),
    /** The terms the text actually carries: the tested ones, or the control's benign ones. */
    carriedTerms: text('carried_terms').array().notNull(),
    text: text('text').notNull(),
    nonce: text('nonce').notNull().unique(),
    senderAccountId: uuid('sender_account_id')
      .notNull()
      .references(() => accounts.id),
    conversationId: uuid('conversation_id')
      .notNull()
      .references(() => conversations.id),
    sendAt: tstz('send_at').notNull(),
    deadlineAt: tstz('deadline_at').notNull(),
    templateId: text('template_id').notNull(),
    templateVersion: text('template_version').notNull(),
    /** The round's seed (the plan can be rebuilt from it). */
    seed: text('seed').notNull(),
    handedOutAt: tstz('handed_out_at'),
    /**
     * When the retention job (collector/retention.ts) deleted this canary's raw events; from
     * then on its outcomes are final and never re-derived (decision 017).
     */
    eventsPrunedAt: tstz('events_pruned_at'),
    /** Events of this pruned canary arrived after pruning: the retention job deletes them and clears it. */
    lateEventsAt: tstz('late_events_at'),
    createdAt: createdAt(),
  },
  (t) => [
    check('canaries_kind_check', sql`${t.kind} in ('test', 'control')`),
    index('canaries_sender_send_at_idx').on(t.senderAccountId, t.sendAt),
    // A sender's canaries still open at a time (the planner's send budget, collector/db/capacity.ts).
    index('canaries_sender_deadline_idx').on(t.senderAccountId, t.deadlineAt),
    index('canaries_pair_idx').on(t.pairId),
    // Keyset order of the research API's outcome pages.
    index('canaries_send_at_id_idx').on(t.sendAt, t.id),
    // The retention job: canaries whose events are still kept, oldest deadline first, and
    // pruned canaries that received events since (collector/db/retention.ts).
    index('canaries_unpruned_deadline_idx').on(t.deadlineAt).where(sql`${t.eventsPrunedAt} is null`),
    index('canaries_late_events_idx').on(t.lateEventsAt).where(sql`${t.lateEventsAt} is not null`),
    // Incremental judging (collector/db/judging.ts, decision 028): a campaign's canaries whose
    // deadline passed since the last sweep, and the pairs of one term set.
    index('canaries_campaign_deadline_idx').on(t.campaignId, t.deadlineAt),
    index('canaries_campaign_term_set_idx').on(t.campaignId, t.termSet, t.kind),
    // The terms view's detail of one term set over every campaign: its timeline, its latest outcomes.
    index('canaries_term_set_send_at_idx').on(t.termSet, t.sendAt, t.id),
  ],
);

/**
 * Every event as received: the event's JSON, the batch's signature and request id. Event
 * ids are the probe's own: unique per probe, so one probe cannot claim another's ids.
 */
export const events = pgTable(
  'events',
  {
    eventId: uuid('event_id').notNull(),
    probeId: uuid('probe_id')
      .notNull()
      .references(() => probes.id),
    requestId: uuid('request_id').notNull(),
    signature: text('signature').notNull(),
    type: text('type').notNull(),
    platform: text('platform').notNull(),
    accountId: uuid('account_id')
      .notNull()
      .references(() => accounts.id),
    conversation: text('conversation').notNull(),
    canaryId: uuid('canary_id'),
    nonce: text('nonce'),
    /** Probe clock. */
    at: tstz('at').notNull(),
    clockOffsetMs: doublePrecision('clock_offset_ms').notNull(),
    raw: jsonb('raw').notNull(),
    receivedAt: tstz('received_at').notNull().defaultNow(),
  },
  (t) => [
    // Partitioned by month of received_at (migration 0022, decision 039): a key must hold the
    // partition key, so this one is unique per month only; ingest keeps events idempotent per
    // (probe_id, event_id) across months (collector/db/events.ts insertEvents).
    primaryKey({ name: 'events_probe_event_pk', columns: [t.probeId, t.eventId, t.receivedAt] }),
    check('events_type_check', sql`${t.type} in ('sent', 'rejected', 'failed', 'received')`),
    index('events_canary_idx').on(t.canaryId),
    // No index on nonce: receipts are matched to canaries by canaries.nonce, and nothing
    // looks events up by nonce; its upkeep was a cost of every ingest (decision 023).
    // The bound on receipts of nonces that are no canary of ours (collector/ingest.ts).
    index('events_unknown_nonce_idx')
      .on(t.probeId, t.receivedAt)
      .where(sql`${t.type} = 'received' and ${t.canaryId} is null`),
    // The retention job: look-alike receipts by age, across probes (collector/db/retention.ts).
    index('events_lookalike_received_at_idx')
      .on(t.receivedAt)
      .where(sql`${t.type} = 'received' and ${t.canaryId} is null`),
  ],
);

/** One row per canary and expected recipient. */
export const outcomes = pgTable(
  'outcomes',
  {
    canaryId: uuid('canary_id')
      .notNull()
      .references(() => canaries.id, { onDelete: 'cascade' }),
    recipientAccountId: uuid('recipient_account_id')
      .notNull()
      .references(() => accounts.id),
    status: text('status').notNull(),
    /**
     * The canary's, copied so the finaliser needs no join; the partition key (decision 040):
     * joins to canaries also match it (partitions.ts sameDeadline), which prunes.
     */
    deadlineAt: tstz('deadline_at').notNull(),
    /** Receipt minus send, both corrected by the probes' clock offsets. */
    latencyMs: integer('latency_ms'),
    sentEventId: uuid('sent_event_id'),
    receivedEventId: uuid('received_event_id'),
    /** Receipt time on the collector clock. */
    receivedAt: tstz('received_at'),
    receivedText: text('received_text'),
    failure: text('failure'),
    notice: text('notice'),
    dataFormatVersion: integer('data_format_version').notNull(),
    updatedAt: tstz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    // deadline_at, the partition key (migration 0023, decision 040), is the canary's: one
    // canary's outcomes are all in one month, so (canary, recipient) stays unique.
    primaryKey({ columns: [t.canaryId, t.recipientAccountId, t.deadlineAt] }),
    index('outcomes_status_deadline_idx').on(t.status, t.deadlineAt),
    // Outcomes written since the rollup watermark (collector/db/rollups.ts, decision 022).
    index('outcomes_updated_at_idx').on(t.updatedAt),
    check(
      'outcomes_status_check',
      sql`${t.status} in ('pending', 'delivered', 'delayed', 'missing', 'altered', 'rejected', 'failed')`,
    ),
  ],
);

/** The seven outcome status counts of a rollup row (a function: column builders belong to one table each). */
const statusCounts = () => ({
  delivered: integer('delivered').notNull(),
  delayed: integer('delayed').notNull(),
  missing: integer('missing').notNull(),
  altered: integer('altered').notNull(),
  rejected: integer('rejected').notNull(),
  failed: integer('failed').notNull(),
  pending: integer('pending').notNull(),
});

/**
 * The columns outcome_rollups and outcome_rollup_totals share after their keys: the scope (or
 * '' when not scoped), the arm, the seven status counts and the latency histogram. A function:
 * drizzle's column builders belong to one table each.
 */
const rollupCells = () => ({
  scoped: boolean('scoped').notNull(),
  kind: text('kind').notNull(),
  platform: text('platform').notNull(),
  conversationKind: text('conversation_kind').notNull(),
  senderRegion: text('sender_region').notNull(),
  recipientRegion: text('recipient_region').notNull(),
  ...statusCounts(),
  /** Delivered and delayed outcomes with a latency, per bucket of rollups.ts LATENCY_BUCKETS. */
  latency: integer('latency').array().notNull(),
  /**
   * The same outcomes per bin of /api/v1/latency (protocol LATENCY_BIN_EDGES_MS, 10 bins:
   * below 250 ms … at or above 300 s; a negative latency counts in the first). Changing those
   * edges means rebuilding the rollups (a migration that empties them, as 0016 does).
   */
  bins: integer('bins').array().notNull(),
});

/**
 * Outcome counts per time bucket (minute, hour, day of the send time, UTC), campaign, arm and
 * scope, with a latency histogram of arrived outcomes in fixed log buckets (decision 022).
 * Written only by collector/db/rollups.ts: minute rows from outcomes, hour rows from minute
 * rows, day rows from hour rows. `scoped` false: the row totals every scope of its campaign,
 * arm and bucket (platform, conversation kind and regions are '').
 */
export const outcomeRollups = pgTable(
  'outcome_rollups',
  {
    grain: text('grain').notNull(),
    bucket: tstz('bucket').notNull(),
    campaignId: uuid('campaign_id')
      .notNull()
      .references(() => campaigns.id, { onDelete: 'cascade' }),
    ...rollupCells(),
  },
  (t) => [
    primaryKey({
      name: 'outcome_rollups_pk',
      columns: [
        t.grain,
        t.scoped,
        t.bucket,
        t.campaignId,
        t.kind,
        t.platform,
        t.conversationKind,
        t.senderRegion,
        t.recipientRegion,
      ],
    }),
    index('outcome_rollups_campaign_idx').on(t.campaignId, t.grain, t.bucket),
    check('outcome_rollups_grain_check', sql`${t.grain} in ('minute', 'hour', 'day')`),
  ],
);

/**
 * outcome_rollups summed over campaigns, per grain, bucket, arm and scope: what a read with no
 * campaign filter and no campaign axis (the dashboard's views over every campaign) sums, so
 * that it reads buckets × scopes rows however many campaigns there are. Written only by
 * collector/db/rollups.ts, from outcome_rollups of the same grain, in the job's transaction.
 */
export const outcomeRollupTotals = pgTable(
  'outcome_rollup_totals',
  {
    grain: text('grain').notNull(),
    bucket: tstz('bucket').notNull(),
    ...rollupCells(),
  },
  (t) => [
    primaryKey({
      name: 'outcome_rollup_totals_pk',
      columns: [
        t.grain,
        t.scoped,
        t.bucket,
        t.kind,
        t.platform,
        t.conversationKind,
        t.senderRegion,
        t.recipientRegion,
      ],
    }),
    check('outcome_rollup_totals_grain_check', sql`${t.grain} in ('minute', 'hour', 'day')`),
  ],
);

/**
 * Per campaign, term set and arm: the status counts, latency histogram (rollups.ts buckets) and
 * first and last send of the campaign's canaries sent before its `closed_until`
 * (term_set_rollup_progress) that were final when the job counted them (decision 033).
 * Written only by collector/db/term-set-rollups.ts.
 */
export const termSetRollups = pgTable(
  'term_set_rollups',
  {
    campaignId: uuid('campaign_id')
      .notNull()
      .references(() => campaigns.id, { onDelete: 'cascade' }),
    termSet: text('term_set').array().notNull(),
    kind: text('kind').notNull(),
    ...statusCounts(),
    latency: integer('latency').array().notNull(),
    firstSentAt: tstz('first_sent_at').notNull(),
    lastSentAt: tstz('last_sent_at').notNull(),
  },
  (t) => [primaryKey({ name: 'term_set_rollups_pk', columns: [t.campaignId, t.termSet, t.kind] })],
);

/**
 * A term-set rollup row per bucket of the send time (UTC): campaign, term set, arm, bucket, the
 * status counts, the latency histogram, and the bucket's first and last send (the term-set list
 * within a time window, decision 037).
 */
function termSetBucketColumns() {
  return {
    campaignId: uuid('campaign_id')
      .notNull()
      .references(() => campaigns.id, { onDelete: 'cascade' }),
    termSet: text('term_set').array().notNull(),
    kind: text('kind').notNull(),
    bucket: tstz('bucket').notNull(),
    ...statusCounts(),
    latency: integer('latency').array().notNull(),
    firstSentAt: tstz('first_sent_at').notNull(),
    lastSentAt: tstz('last_sent_at').notNull(),
  };
}

/**
 * term_set_rollups per hour of the send time (UTC): the terms view's timeline of one term set
 * (`/aggregation?terms=…&group_by=hour|day,kind`). Written by the same job, in the same
 * transaction, from the same canaries, behind the same closed line (decision 035). The key starts
 * at the term set, so one term set's hours are one index range with or without a campaign.
 */
export const termSetHourRollups = pgTable('term_set_hour_rollups', termSetBucketColumns(), (t) => [
  primaryKey({ name: 'term_set_hour_rollups_pk', columns: [t.termSet, t.campaignId, t.kind, t.bucket] }),
  index('term_set_hour_rollups_campaign_idx').on(t.campaignId),
  // the term-set list within a time window: the hours beside its whole days (decision 037)
  index('term_set_hour_rollups_bucket_idx').on(t.bucket),
]);

/**
 * term_set_rollups per day of the send time (UTC): the term-set list within a time window reads
 * its whole days here (decision 037). Written by the same job, in the same transaction, from the
 * same canaries, behind the same closed line. The key starts at the day, so a window's days are
 * one index range over every term set.
 */
export const termSetDayRollups = pgTable('term_set_day_rollups', termSetBucketColumns(), (t) => [
  primaryKey({ name: 'term_set_day_rollups_pk', columns: [t.bucket, t.campaignId, t.termSet, t.kind] }),
  index('term_set_day_rollups_campaign_idx').on(t.campaignId),
]);

/**
 * term_set_rollups per quarter of a day (six hours from midnight UTC) of the send time: the
 * term-set list within a time window reads here the whole quarters beside its whole days, and
 * hour rows only for the hours beside those (decision 037). Written with the others, keyed as
 * the day rows.
 */
export const termSetQuarterRollups = pgTable('term_set_quarter_rollups', termSetBucketColumns(), (t) => [
  primaryKey({ name: 'term_set_quarter_rollups_pk', columns: [t.bucket, t.campaignId, t.termSet, t.kind] }),
  index('term_set_quarter_rollups_campaign_idx').on(t.campaignId),
]);

/**
 * How far term_set_rollups has counted a campaign: its canaries sent before `closed_until`,
 * with the outcomes written before `watermark` (decision 033).
 */
export const termSetRollupProgress = pgTable('term_set_rollup_progress', {
  campaignId: uuid('campaign_id')
    .primaryKey()
    .references(() => campaigns.id, { onDelete: 'cascade' }),
  closedUntil: tstz('closed_until').notNull(),
  watermark: tstz('watermark').notNull(),
});

/** The rollup job's watermark: outcomes written before it are in outcome_rollups (one row, id 1). */
export const rollupWatermark = pgTable(
  'rollup_watermark',
  {
    id: integer('id').primaryKey(),
    watermark: tstz('watermark').notNull(),
    updatedAt: tstz('updated_at').notNull().defaultNow(),
  },
  (t) => [check('rollup_watermark_one_row', sql`${t.id} = 1`)],
);

/**
 * Statistical verdicts per campaign × term set × scope, written by collector/findings.ts
 * (recomputed on the sweep; one row per `key`, upserted). Scope keys: platform,
 * conversation_kind, sender_region, recipient_region.
 */
export const findings = pgTable(
  'findings',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    campaignId: uuid('campaign_id').references(() => campaigns.id, { onDelete: 'set null' }),
    termSet: text('term_set').array().notNull(),
    /** { platform, sender_region, recipient_region, conversation_kind }. */
    scope: jsonb('scope').notNull(),
    /** termSetKey + scope, unique per campaign: what the upsert matches on (null: written elsewhere). */
    key: text('key'),
    /** Send times of the first and last pair in the evidence. */
    windowStart: tstz('window_start').notNull(),
    windowEnd: tstz('window_end').notNull(),
    verdict: text('verdict').notNull(),
    /** Outcome kind the verdict is about (missing, delayed, rejected, altered; adverse for none/inconclusive). */
    kind: text('kind'),
    testTrials: integer('test_trials').notNull(),
    controlTrials: integer('control_trials').notNull(),
    testRate: doublePrecision('test_rate'),
    controlRate: doublePrecision('control_rate'),
    pValue: doublePrecision('p_value'),
    /** Benjamini–Hochberg over the campaign's term sets × scopes. */
    qValue: doublePrecision('q_value'),
    /** Wilson interval of test_rate. */
    ciLow: doublePrecision('ci_low'),
    ciHigh: doublePrecision('ci_high'),
    /** Newcombe interval of test_rate − control_rate. */
    diffCiLow: doublePrecision('diff_ci_low'),
    diffCiHigh: doublePrecision('diff_ci_high'),
    /** The sequential design settled this verdict (adaptive stopping stops sending). */
    settled: boolean('settled').notNull().default(false),
    /** No proper subset of term_set has a finding with this verdict in this scope. */
    minimal: boolean('minimal').notNull().default(true),
    /** Change-point detection: the current verdict holds since (onset). */
    since: tstz('since'),
    /** Change-point detection: the last adverse segment ended here (null while it lasts). */
    endedAt: tstz('ended_at'),
    /** Change-point segments [{ from, to, verdict }] (monitor mode), and latency figures. */
    detail: jsonb('detail'),
    /**
     * Corroboration (decision 012): per arm { probes, asns, independent } of the probes whose
     * accounts sent or received the evidence; null for findings not built from paired outcomes.
     */
    independentProbes: jsonb('independent_probes'),
    createdAt: createdAt(),
    updatedAt: tstz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    unique('findings_campaign_key_key').on(t.campaignId, t.key),
    check(
      'findings_verdict_check',
      sql`${t.verdict} in ('suppressed', 'delayed', 'rejected', 'altered', 'none', 'inconclusive')`,
    ),
  ],
);

/** Adaptive stopping: the sequential design's state per campaign × term set × scope. */
export const sequentialStates = pgTable(
  'sequential_states',
  {
    campaignId: uuid('campaign_id')
      .notNull()
      .references(() => campaigns.id, { onDelete: 'cascade' }),
    /** findings.key of the term set × scope. */
    key: text('key').notNull(),
    termSet: text('term_set').array().notNull(),
    scope: jsonb('scope').notNull(),
    /** collector/analysis SequentialState (plain JSON). */
    state: jsonb('state').notNull(),
    settledVerdict: text('settled_verdict'),
    updatedAt: tstz('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.campaignId, t.key] })],
);

/**
 * Incremental judging (collector/findings.ts, collector/db/judging.ts, decision 028), per
 * campaign: outcomes written before `outcomesBefore` and canaries whose deadline is before
 * `deadlinesBefore` have been put into judging_backlog; `version` grows with every write of
 * judgments, so a sweep writes only if no other sweep wrote since it read; `options` are the
 * judging options the judgments were made with (other options: judge everything again).
 */
export const judgingState = pgTable('judging_state', {
  campaignId: uuid('campaign_id')
    .primaryKey()
    .references(() => campaigns.id, { onDelete: 'cascade' }),
  outcomesBefore: tstz('outcomes_before'),
  deadlinesBefore: tstz('deadlines_before'),
  version: bigint('version', { mode: 'number' }).notNull().default(0),
  options: text('options').notNull(),
  updatedAt: tstz('updated_at').notNull().defaultNow(),
});

/**
 * Term set × scope cells with outcomes to judge again (one row per term set as the canaries
 * spell it and scope). `firstChange`: the earliest change seen (oldest first); `mark` is new on
 * every marking, so a sweep deletes only the markings it judged.
 */
export const judgingBacklog = pgTable(
  'judging_backlog',
  {
    campaignId: uuid('campaign_id')
      .notNull()
      .references(() => campaigns.id, { onDelete: 'cascade' }),
    termSet: text('term_set').array().notNull(),
    platform: text('platform').notNull(),
    conversationKind: text('conversation_kind').notNull(),
    senderRegion: text('sender_region').notNull(),
    recipientRegion: text('recipient_region').notNull(),
    firstChange: tstz('first_change').notNull(),
    mark: bigserial('mark', { mode: 'number' }).notNull(),
  },
  (t) => [
    primaryKey({
      name: 'judging_backlog_pk',
      columns: [t.campaignId, t.termSet, t.platform, t.conversationKind, t.senderRegion, t.recipientRegion],
    }),
    index('judging_backlog_oldest_idx').on(t.campaignId, t.firstChange),
  ],
);

/**
 * The latest judgment of each term set × scope (findings.key) with paired evidence: what the
 * campaign-wide step (Benjamini–Hochberg, sequential looks, minimality) needs without reading
 * the pairs again. `termSets`: the spellings of the term set its canaries carry; `judged`: the
 * finding with and without the family's rejection, change-points and corroboration (JSON);
 * `written`: the finding last written for it (JSON), so unchanged findings are not rewritten.
 */
export const judgments = pgTable(
  'judgments',
  {
    campaignId: uuid('campaign_id')
      .notNull()
      .references(() => campaigns.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    termSets: jsonb('term_sets').notNull(),
    /** JSON text, not jsonb: the numbers come back exactly as written. */
    judged: text('judged').notNull(),
    written: text('written'),
    updatedAt: tstz('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.campaignId, t.key] })],
);

/**
 * Screening and isolation runs (collector/followups.ts): the input, in which scope, and the
 * result once the stateless stepper is done. Each round it asked for is a followup_steps row.
 */
export const followups = pgTable(
  'followups',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    campaignId: uuid('campaign_id')
      .notNull()
      .references(() => campaigns.id, { onDelete: 'cascade' }),
    procedure: text('procedure').notNull(),
    /** Isolation: the suppressed message's terms; screening: the campaign's term sets. */
    input: jsonb('input').notNull(),
    /** Stable identity of the run: procedure + input + scope. */
    key: text('key').notNull(),
    scope: jsonb('scope').notNull(),
    status: text('status').notNull().default('running'),
    result: jsonb('result'),
    createdAt: createdAt(),
    updatedAt: tstz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    unique('followups_campaign_key_key').on(t.campaignId, t.key),
    check('followups_procedure_check', sql`${t.procedure} in ('screen', 'isolate')`),
    check('followups_status_check', sql`${t.status} in ('running', 'done', 'failed')`),
  ],
);

/** One round a screening or isolation run sent: its messages and, once known, their results. */
export const followupSteps = pgTable(
  'followup_steps',
  {
    followupId: uuid('followup_id')
      .notNull()
      .references(() => followups.id, { onDelete: 'cascade' }),
    step: integer('step').notNull(),
    /** MessageRequest[] as the stepper asked. */
    messages: jsonb('messages').notNull(),
    /** Pair id of each message's test and control canaries, by message index. */
    pairIds: uuid('pair_ids').array().notNull(),
    /** ProbeResult[] once every canary is final. */
    results: jsonb('results'),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.followupId, t.step] }),
    // Whether a pair is a follow-up's (judging leaves those out): `pair_ids @> array[pair]`.
    index('followup_steps_pair_ids_idx').using('gin', t.pairIds),
  ],
);

/** Term sets a campaign tests beyond its lists: minimal combinations found by isolation. */
export const derivedTermSets = pgTable(
  'derived_term_sets',
  {
    campaignId: uuid('campaign_id')
      .notNull()
      .references(() => campaigns.id, { onDelete: 'cascade' }),
    /** termSetKey */
    key: text('key').notNull(),
    termSet: text('term_set').array().notNull(),
    followupId: uuid('followup_id').references(() => followups.id, { onDelete: 'set null' }),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.campaignId, t.key] })],
);

/** Request ids of signed requests seen, for replay rejection; pruned after the signature window. */
export const requestIds = pgTable(
  'request_ids',
  {
    requestId: uuid('request_id').primaryKey(),
    probeId: uuid('probe_id')
      .notNull()
      .references(() => probes.id),
    seenAt: tstz('seen_at').notNull().defaultNow(),
  },
  (t) => [index('request_ids_seen_at_idx').on(t.seenAt)],
);
