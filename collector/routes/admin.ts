/**
 * The admin API (/admin/v1/...): bearer admin token, compared in constant time in
 * onRequest, before any body is read; rate limited per client address (HMAC); refused
 * requests count against the address (http/auth-failures.ts).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { CronExpressionParser } from 'cron-parser';
import { Type } from 'typebox';
import {
  AccountsResponse,
  type Campaign,
  Campaign as CampaignSchema,
  CampaignsResponse,
  ConversationDisagreementsResponse,
  type ConversationSelection,
  CreateCampaignRequest,
  CreateEnrollmentTokenRequest,
  EnrollmentTokenResponse,
  ProbesResponse,
  RetentionReport,
  RunRetentionRequest,
  type TermListSummary,
  TermListsResponse,
  UploadTermListQuery,
  UploadTermListResponse,
} from '../../protocol/index.ts';
import { conversationDisagreements } from '../conversation-views.ts';
import { listAccounts, sharedConversationViews } from '../db/accounts.ts';
import {
  type CampaignRow,
  createCampaign,
  createTermList,
  existingTermListIds,
  listCampaigns,
  listTermLists,
  type TermListRow,
  termSetsOf,
} from '../db/campaigns.ts';
import type { Db } from '../db/open.ts';
import { createEnrollmentToken, listProbes } from '../db/probes.ts';
import { SdError } from '../errors.ts';
import { adminAuthHook } from '../http/admin-auth.ts';
import type { AuthFailureLimiter } from '../http/auth-failures.ts';
import { throwBodyError } from '../http/body.ts';
import { type RateLimitOptions, registerRateLimit } from '../http/rate-limit.ts';
import { controlUnsupported } from '../planning/controls.ts';
import { MAX_TERM_FILE_BYTES, parseTermFile } from '../planning/terms.ts';
import type { RetentionRunner } from '../retention.ts';
import { generateToken, keyedHash } from '../secrets.ts';
import { DEFAULT_PROBE_SILENT_AFTER_MS, fleetRoutes, probeHealth } from './fleet.ts';

export interface AdminRoutesOptions {
  db: Db;
  adminToken: string;
  hashKey: Buffer;
  now: () => Date;
  /** Requests per client address (HMAC) and window; default 300 a minute. */
  rateLimit?: RateLimitOptions | undefined;
  authFailures: AuthFailureLimiter;
  /** A probe with no check-in for this long shows health `silent` (default 15 minutes). */
  probeSilentAfterMs?: number | undefined;
  /** The process's retention job (POST /retention/run). */
  retention: RetentionRunner;
}

/** An operator and the CLI; a script creating campaigns in a loop stays well under it. */
export const DEFAULT_ADMIN_RATE_LIMIT: RateLimitOptions = { max: 300, timeWindowMs: 60_000 };

/** Term files may be large (the Citizen Lab lists are a few hundred kB). */

const iso = (d: Date) => d.toISOString();

/** NUL and unpaired surrogates: valid JSON, but Postgres text and jsonb cannot store them. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what is looked for
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The first string (or key) in `value` that cannot be stored, as a JSON pointer; undefined if none. */
function unstorablePath(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? path : undefined;
  if (typeof value !== 'object' || value === null || depth > 32) return undefined;
  for (const [k, v] of Object.entries(value)) {
    const at = `${path}/${k}`;
    if (UNSTORABLE.test(k)) return at;
    const found = unstorablePath(v, at, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** A date-time the database can store (1970 up to 9999); the schema has already checked its format. */
function storableDate(raw: string, field: string): Date {
  const d = new Date(raw);
  const t = d.getTime();
  if (!Number.isFinite(t) || t < 0 || t >= Date.UTC(10_000, 0, 1)) {
    throw new SdError('SD_ERR_VALIDATION', `/${field}: must be a date-time from 1970 to 9999`);
  }
  return d;
}

function termListOut(t: TermListRow): TermListSummary {
  return { id: t.id, name: t.name, source: t.source, term_sets: t.termSets, created_at: iso(t.createdAt) };
}

function campaignOut(c: CampaignRow): Campaign {
  return {
    id: c.id,
    name: c.name,
    mode: c.mode as Campaign['mode'],
    term_list_ids: c.termListIds,
    conversations: c.conversationSelection as ConversationSelection,
    cadence: c.cadenceCron,
    deadline_seconds: c.deadlineSeconds,
    term_sets_per_round: c.termSetsPerRound,
    min_independent_probes: c.minIndependentProbes,
    seed: c.seed,
    active: c.active,
    starts_at: iso(c.startsAt),
    ends_at: c.endsAt ? iso(c.endsAt) : null,
    created_at: iso(c.createdAt),
    rounds: c.rounds,
    canaries: c.canaries,
    skipped_term_sets: c.skipped.map((k) => ({
      term_set: k.termSet,
      reason: k.reason,
      conversations: k.conversations,
    })),
  };
}

export const adminRoutes: FastifyPluginAsyncTypebox<AdminRoutesOptions> = async (app, opts) => {
  const { db, now } = opts;

  app.decorateRequest('adminTokenHash', null);
  opts.authFailures.register(app);
  await registerRateLimit(app, opts.hashKey, opts.rateLimit ?? DEFAULT_ADMIN_RATE_LIMIT);
  // onRequest: no byte of the body is read (nor parsed) before the token is checked.
  app.addHook('onRequest', adminAuthHook(db, opts));
  app.addHook('preValidation', throwBodyError);
  app.addHook('preValidation', async (req) => {
    const where =
      unstorablePath(req.query, 'querystring') ??
      unstorablePath(req.body, typeof req.body === 'string' ? 'body' : '');
    if (where !== undefined) {
      throw new SdError('SD_ERR_VALIDATION', `${where}: contains a NUL character or an unpaired surrogate`);
    }
  });
  await app.register(fleetRoutes, {
    db,
    hashKey: opts.hashKey,
    now,
    probeSilentAfterMs: opts.probeSilentAfterMs,
  });

  app.post(
    '/retention/run',
    { schema: { body: Type.Optional(RunRetentionRequest), response: { 200: RetentionReport } } },
    async (req): Promise<RetentionReport> => {
      const { settings } = opts.retention;
      const base = {
        event_retention_days: settings.eventRetentionDays,
        lookalike_retention_days: settings.lookAlikeRetentionDays,
      };
      if (req.body?.dry_run) {
        const p = await opts.retention.preview(now());
        return {
          dry_run: true,
          ...base,
          canaries: p.canaries,
          canary_events: p.canaryEvents,
          late_events: 0,
          lookalike_receipts: p.lookAlikes,
          skipped: 0,
          capped: p.capped,
        };
      }
      const run = await opts.retention.run(now());
      req.log.info({ ...run }, 'retention run (admin)');
      return {
        dry_run: false,
        ...base,
        canaries: run.canaries,
        canary_events: run.canaryEvents,
        late_events: run.lateEvents,
        lookalike_receipts: run.lookAlikes,
        skipped: run.skipped,
        capped: false,
      };
    },
  );

  app.post(
    '/enrollment-tokens',
    { schema: { body: CreateEnrollmentTokenRequest, response: { 201: EnrollmentTokenResponse } } },
    async (req, reply) => {
      const token = generateToken('sdenroll');
      const uses = req.body.uses ?? 1;
      const expiresAt = new Date(now().getTime() + (req.body.expires_in_hours ?? 168) * 3_600_000);
      const { id } = await createEnrollmentToken(db, {
        tokenHash: keyedHash(opts.hashKey, token),
        usesLeft: uses,
        expiresAt,
        label: req.body.label,
      });
      return reply.status(201).send({ id, token, uses, expires_at: iso(expiresAt) });
    },
  );

  app.post(
    '/term-lists',
    {
      bodyLimit: MAX_TERM_FILE_BYTES,
      schema: {
        querystring: UploadTermListQuery,
        body: Type.String({ maxLength: MAX_TERM_FILE_BYTES }),
        response: { 201: UploadTermListResponse },
      },
    },
    async (req, reply) => {
      const { termSets, errors } = parseTermFile(req.body);
      if (termSets.length === 0) {
        const lines = errors.map((e) => `line ${e.line}: ${e.message}`).join('; ');
        throw new SdError('SD_ERR_VALIDATION', `body: no valid term set${lines ? ` (${lines})` : ''}`);
      }
      const list = await createTermList(db, { name: req.query.name, source: req.query.source, termSets });
      if (!list) throw new SdError('SD_ERR_CONFLICT', `name: a term list called "${req.query.name}" exists`);
      return reply.status(201).send({ term_list: termListOut(list), skipped: errors });
    },
  );

  app.get('/term-lists', { schema: { response: { 200: TermListsResponse } } }, async () => ({
    term_lists: (await listTermLists(db)).map(termListOut),
  }));

  app.post(
    '/campaigns',
    { schema: { body: CreateCampaignRequest, response: { 201: CampaignSchema } } },
    async (req, reply) => {
      const b = req.body;
      try {
        CronExpressionParser.parse(b.cadence, { tz: 'UTC' });
      } catch (err) {
        throw new SdError('SD_ERR_VALIDATION', `/cadence: not a cron expression (${(err as Error).message})`);
      }
      const known = new Set(await existingTermListIds(db, b.term_list_ids));
      const unknown = b.term_list_ids.filter((id) => !known.has(id));
      if (unknown.length > 0)
        throw new SdError('SD_ERR_VALIDATION', `/term_list_ids: unknown ${unknown.join(', ')}`);
      // Terms in a script without control vocabulary cannot be measured: refuse up front.
      const unsupported = new Set<string>();
      for (const set of await termSetsOf(db, b.term_list_ids)) {
        for (const term of set) if (controlUnsupported(term)) unsupported.add(term);
      }
      if (unsupported.size > 0) {
        const shown = [...unsupported].slice(0, 5).join(', ');
        throw new SdError(
          'SD_ERR_VALIDATION',
          `/term_list_ids: no matched controls can be made for ${shown}`,
        );
      }
      const startsAt = b.starts_at ? storableDate(b.starts_at, 'starts_at') : now();
      const endsAt = b.ends_at ? storableDate(b.ends_at, 'ends_at') : null;
      if (endsAt && endsAt <= startsAt)
        throw new SdError('SD_ERR_VALIDATION', '/ends_at: must be after starts_at');
      const row = await createCampaign(db, {
        name: b.name,
        mode: b.mode ?? 'screen',
        termListIds: b.term_list_ids,
        conversations: b.conversations,
        cadenceCron: b.cadence,
        deadlineSeconds: b.deadline_seconds,
        termSetsPerRound: b.term_sets_per_round ?? 20,
        minIndependentProbes: b.min_independent_probes ?? 1,
        seed: b.seed ?? randomBytes(12).toString('hex'),
        startsAt,
        endsAt,
      });
      return reply.status(201).send(campaignOut(row));
    },
  );

  app.get('/campaigns', { schema: { response: { 200: CampaignsResponse } } }, async () => ({
    campaigns: (await listCampaigns(db)).map(campaignOut),
  }));

  app.get('/probes', { schema: { response: { 200: ProbesResponse } } }, async () => ({
    probes: (await listProbes(db)).map((p) => ({
      ...probeHealth(p, now(), opts.probeSilentAfterMs ?? DEFAULT_PROBE_SILENT_AFTER_MS),
      id: p.id,
      country: p.country,
      asn: p.asn,
      software_version: p.softwareVersion,
      label: p.label,
      registered_at: iso(p.registeredAt),
      last_checkin_at: p.lastCheckinAt ? iso(p.lastCheckinAt) : null,
      clock_offset_ms: p.clockOffsetMs,
      clock_rtt_ms: p.clockRttMs,
      outbox_backlog: p.outboxBacklog,
      dead_letters: p.deadLetters,
      storage_full_since: p.storageFullSince ? iso(p.storageFullSince) : null,
      revoked_at: p.revokedAt ? iso(p.revokedAt) : null,
      replaced_by: p.replacedBy,
    })),
  }));

  // Conversations whose probes' views disagree (kind, members); the newest 1,000 shared ones are checked.
  app.get(
    '/conversations/disagreements',
    { schema: { response: { 200: ConversationDisagreementsResponse } } },
    async () => ({ conversations: conversationDisagreements(await sharedConversationViews(db, 1000)) }),
  );

  app.get('/accounts', { schema: { response: { 200: AccountsResponse } } }, async () => ({
    accounts: (await listAccounts(db)).map((a) => ({
      id: a.id,
      probe_id: a.probeId,
      platform: a.platform,
      handle: a.handle,
      region: a.region,
      state: a.state,
      adapter: { name: a.adapterName, version: a.adapterVersion },
      probe_country: a.probeCountry,
      last_seen_at: iso(a.lastSeenAt),
    })),
  }));
};
