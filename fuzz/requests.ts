/**
 * Generated requests for every endpoint of the collector (probe API with valid
 * signatures, admin API, research query strings) and of the testbed API. A request is
 * generated as a recipe and built when it is sent (fresh event ids, timestamps and
 * signatures), so a replayed or shrunk case never collides with an earlier one.
 *
 * Properties checked for every request by `check`: never a 5xx, and for an events batch
 * that mixes valid and hostile events, every valid event stored exactly once.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { eventIdCounts } from '../collector/db/inspect.ts';
import type { Db } from '../collector/db/open.ts';
import {
  account,
  signedHeaders,
  type TestProbe,
  UNLIMITED_CAPACITY,
} from '../collector/test-support/probe.ts';
import {
  type Canary,
  receivedEvent,
  rejectedEvent,
  sentEvent,
  type World,
} from '../collector/test-support/world.ts';
import { LIMITS } from '../protocol/index.ts';
import {
  hostileJson,
  hostileNumber,
  hostileRawBody,
  hostileString,
  hostileTimestamp,
  hostileValue,
  mutate,
  nonceLike,
} from './hostile.ts';

/** A request as sent: real signatures for the probe API, built at send time. */
export interface BuiltRequest {
  target: 'collector' | 'testbed';
  method: 'GET' | 'POST';
  /** Path and query string. */
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** Event ids that must be stored exactly once after the request (valid events of a mixed batch). */
  mustStore: string[];
}

export interface FuzzRequest {
  /** e.g. `POST /probe/v1/events (mixed)`: statuses are counted per endpoint. */
  endpoint: string;
  build(): BuiltRequest;
}

/** What the collector requests refer to: a small world, canaries, and a probe that holds no world account. */
export interface CollectorContext {
  world: World;
  canaries: Canary[];
  /** A probe with accounts of its own (hostile check-ins come from it, never from the world's probes). */
  stranger: TestProbe;
  strangerHandle: string;
  adminToken: string;
  /** A real term list id (for campaigns that pass validation). */
  termListId: string;
}

/** What the testbed requests refer to: accounts with tokens and a conversation they share. */
export interface TestbedContext {
  token: string;
  handle: string;
  otherHandle: string;
  conversationId: string;
  messageId: string;
}

const json = (v: unknown) => JSON.stringify(v) ?? 'null';

/** Lone surrogates → U+FFFD, so a string can be percent-encoded as UTF-8. */
export const wellFormed = (s: string) =>
  s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

function signed(probe: TestProbe, path: string, body: string, mustStore: string[] = []): BuiltRequest {
  return {
    target: 'collector',
    method: 'POST',
    url: path,
    headers: signedHeaders(probe, path, body),
    body,
    mustStore,
  };
}

// ---------------------------------------------------------------- probe API: events

type Role = 'us' | 'cn';

/** Valid events of the world: boundary values included (longest text, bidi, emoji, old and fresh times). */
function validEvent(role: Role, w: World, c: Canary, variant: number): Record<string, unknown> {
  const at = new Date(Date.now() - (variant % 5) * 600_000);
  const texts = [
    c.text,
    `${c.text} ${'文'.repeat(LIMITS.textChars - c.text.length - 1)}`,
    `\u202E${c.text}\u200B 👩‍👩‍👧‍👦`,
    `<b>${c.text}</b> '; select 1; --`,
  ];
  const text = texts[variant % texts.length]!;
  if (role === 'us') {
    if (variant % 7 === 6) return { ...rejectedEvent(w, c), event_id: randomUUID() };
    return sentEvent(w, c, { at, text, offsetMs: (variant % 3) * 1234.5 - 2000 });
  }
  return receivedEvent(w, variant % 2 ? 'bob' : 'carol', c, {
    at,
    text,
    offsetMs: (variant % 3) * 1234.5 - 2000,
  });
}

const EVENT_FIELDS = [
  'type',
  'event_id',
  'platform',
  'account',
  'conversation',
  'at',
  'clock_offset_ms',
  'adapter',
  'text',
  'nonce',
  'canary_id',
  'from',
  'platform_message_id',
] as const;

/** A hostile event: one of the world's valid events with one field made hostile, or any hostile shape. */
function hostileEvent(role: Role): fc.Arbitrary<(w: World, c: Canary) => unknown> {
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .tuple(fc.constantFrom(...EVENT_FIELDS), hostileValue(), fc.nat(20))
        .map(([field, value, variant]) => (w: World, c: Canary) => ({
          ...validEvent(role, w, c, variant),
          event_id: field === 'event_id' ? value : randomUUID(),
          [field]: value,
        })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom('text', 'from', 'conversation', 'platform_message_id'), hostileString(12_000))
        .map(([field, value]) => (w: World, c: Canary) => ({
          ...validEvent(role, w, c, 0),
          event_id: randomUUID(),
          [field]: field === 'text' ? `${value} ${c.nonce}` : value,
        })),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(nonceLike, hostileString(200)).map(([nonce, text]) => (w: World, c: Canary) => ({
        ...validEvent(role, w, c, 1),
        event_id: randomUUID(),
        nonce,
        text: `${text} ${nonce} ${c.nonce}`,
      })),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(hostileTimestamp, hostileNumber).map(([at, off]) => (w: World, c: Canary) => ({
        ...validEvent(role, w, c, 2),
        event_id: randomUUID(),
        at,
        clock_offset_ms: off,
      })),
    },
    { weight: 1, arbitrary: hostileJson(50).map((v) => () => v) },
  );
}

/**
 * A canary index, uniform over the context's canaries (not biased towards the first: the
 * collector keeps only COPIES_BOUND reports per canary, account and type, so a run that
 * hit one canary would soon test nothing but that bound).
 */
const anyCanary = (ctx: CollectorContext) => fc.noBias(fc.nat(ctx.canaries.length - 1));

/** A batch mixing valid and hostile events, signed by the probe that holds the valid events' accounts. */
function mixedBatch(ctx: CollectorContext): fc.Arbitrary<FuzzRequest> {
  return fc.constantFrom<Role>('us', 'cn').chain((role) =>
    fc
      .tuple(
        fc.array(fc.tuple(anyCanary(ctx), fc.nat(20)), { minLength: 0, maxLength: 4 }),
        fc.array(fc.tuple(anyCanary(ctx), hostileEvent(role)), {
          minLength: 0,
          maxLength: 4,
        }),
        fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
      )
      .filter(([valid, hostile]) => valid.length + hostile.length > 0)
      .map(([valid, hostile, order]) => ({
        endpoint: `POST /probe/v1/events (${valid.length && hostile.length ? 'mixed' : valid.length ? 'valid' : 'hostile'})`,
        build() {
          const w = ctx.world;
          const good = valid.map(([c, variant]) => validEvent(role, w, ctx.canaries[c]!, variant));
          const bad = hostile.map(([c, make]) => make(w, ctx.canaries[c]!));
          // Interleave by the generated order bits, so valid events sit before, between and after hostile ones.
          const events: unknown[] = [];
          let g = 0;
          let b = 0;
          for (let i = 0; g < good.length || b < bad.length; i++) {
            const takeGood = b >= bad.length || (g < good.length && order[i % order.length]);
            events.push(takeGood ? good[g++] : bad[b++]);
          }
          const body = json({ protocol: 1, events });
          return signed(
            role === 'us' ? w.us : w.cn,
            '/probe/v1/events',
            body,
            good.map((e) => e.event_id as string),
          );
        },
      })),
  );
}

/** Envelopes that are not a valid batch (wrong protocol, too many events, not JSON), signed correctly. */
function hostileEnvelope(ctx: CollectorContext): fc.Arbitrary<FuzzRequest> {
  const c0 = () => ctx.canaries[0]!;
  return fc
    .oneof(
      hostileRawBody,
      hostileJson(2_000).map(json),
      mutate({ protocol: 1, events: [1] }, ['protocol', 'events']).map(json),
      fc.integer({ min: LIMITS.eventsPerBatch, max: LIMITS.eventsPerBatch + 2 }).map((n) => {
        const e = sentEvent(ctx.world, c0());
        return json({
          protocol: 1,
          events: Array.from({ length: n }, () => ({ ...e, event_id: randomUUID() })),
        });
      }),
    )
    .map((body) => ({
      endpoint: 'POST /probe/v1/events (envelope)',
      build: () => signed(ctx.world.us, '/probe/v1/events', body),
    }));
}

/** A probe reporting about accounts it does not hold: refused, never a 5xx. */
function foreignBatch(ctx: CollectorContext): fc.Arbitrary<FuzzRequest> {
  return fc.nat(20).map((variant) => ({
    endpoint: 'POST /probe/v1/events (foreign)',
    build() {
      const w = ctx.world;
      const c = ctx.canaries[variant % ctx.canaries.length]!;
      const ev = { ...validEvent('cn', w, c, variant), account: w.handles.alice };
      return signed(ctx.stranger, '/probe/v1/events', json({ protocol: 1, events: [ev] }));
    },
  }));
}

// ---------------------------------------------------------------- probe API: check-in, register

function hostileCheckin(ctx: CollectorContext): fc.Arbitrary<FuzzRequest> {
  const conversation = {
    platform: 'testbed',
    ref: `stranger-room-${ctx.strangerHandle}`,
    kind: 'group',
    members: [ctx.strangerHandle, 'someone-else'],
  };
  const acc = account('testbed', ctx.strangerHandle, 'DE') as unknown as Record<string, unknown>;
  const valid = {
    protocol: 1,
    t0: Date.now(),
    software_version: 'fuzz',
    accounts: [acc],
    conversations: [conversation],
    outbox_backlog: 0,
    dead_letters: 0,
    clock: { offset_ms: 0, rtt_ms: 1, measured_at: new Date().toISOString() },
    storage: { state: 'full', since: new Date().toISOString(), code: 'ENOSPC' },
  };
  return fc
    .oneof(
      mutate(valid, [
        'protocol',
        't0',
        'software_version',
        'accounts',
        'conversations',
        'outbox_backlog',
        'dead_letters',
        'clock',
        'storage',
      ]),
      mutate(valid.storage, ['state', 'since', 'code']).map((storage) => ({ ...valid, storage })),
      mutate(acc, ['platform', 'handle', 'region', 'adapter', 'state']).map((a) => ({
        ...valid,
        accounts: [a],
      })),
      // What an account can send (decision 014), the planner's input: every field hostile.
      mutate({ ...UNLIMITED_CAPACITY, budget_remaining: 10, send_ms: 250 }, [
        'pacing_min_ms',
        'pacing_max_ms',
        'per_minute',
        'per_hour',
        'per_day',
        'remaining_minute',
        'remaining_hour',
        'remaining_day',
        'budget_remaining',
        'queued',
        'send_ms',
      ]).map((capacity) => ({ ...valid, accounts: [{ ...acc, capacity }] })),
      mutate(conversation, ['platform', 'ref', 'kind', 'members']).map((c) => ({
        ...valid,
        conversations: [c],
      })),
      fc
        .array(hostileString(300), { minLength: 1, maxLength: 50 })
        .map((members) => ({ ...valid, conversations: [{ ...conversation, members }] })),
      hostileJson(3_000),
    )
    .map((body) => ({
      endpoint: 'POST /probe/v1/checkin',
      build: () => signed(ctx.stranger, '/probe/v1/checkin', json(body)),
    }));
}

function hostileRegister(): fc.Arbitrary<FuzzRequest> {
  const valid = {
    protocol: 1,
    enrollment_token: 'sdenroll_not_a_real_token_000000',
    public_key: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
    country: 'US',
    asn: 64500,
    software_version: 'fuzz',
  };
  return fc
    .oneof(
      mutate(valid, ['protocol', 'enrollment_token', 'public_key', 'country', 'asn', 'software_version']).map(
        json,
      ),
      hostileRawBody,
    )
    .map((body) => ({
      endpoint: 'POST /probe/v1/register',
      build: () => ({
        target: 'collector' as const,
        method: 'POST' as const,
        url: '/probe/v1/register',
        headers: { 'content-type': 'application/json' },
        body,
        mustStore: [],
      }),
    }));
}

/** Signed requests with hostile signature headers: 401, never a 5xx. */
function hostileAuth(ctx: CollectorContext): fc.Arbitrary<FuzzRequest> {
  const header = fc.constantFrom('x-sd-probe', 'x-sd-timestamp', 'x-sd-request-id', 'x-sd-signature');
  const printable = hostileString(300).map((s) => s.replace(/[^\x20-\x7e]/g, '?'));
  return fc
    .tuple(
      header,
      fc.oneof(printable, hostileNumber.map(String)),
      fc.constantFrom('/probe/v1/events', '/probe/v1/checkin'),
    )
    .map(([name, value, path]) => ({
      endpoint: `POST ${path} (bad auth)`,
      build() {
        const body = json({ protocol: 1, events: [sentEvent(ctx.world, ctx.canaries[0]!)] });
        const built = signed(ctx.world.us, path, body);
        built.headers[name] = value;
        return built;
      },
    }));
}

// ---------------------------------------------------------------- admin API

function adminRequests(ctx: CollectorContext): fc.Arbitrary<FuzzRequest> {
  const auth = { authorization: `Bearer ${ctx.adminToken}` };
  const post = (endpoint: string, url: string, body: string, type = 'application/json') => ({
    endpoint,
    build: (): BuiltRequest => ({
      target: 'collector',
      method: 'POST',
      url,
      headers: { ...auth, 'content-type': type },
      body,
      mustStore: [],
    }),
  });
  const campaign = {
    name: 'fuzz campaign',
    mode: 'monitor',
    term_list_ids: [ctx.termListId],
    conversations: { platform: 'fuzzplatform', refs: ['nowhere'] },
    cadence: '0 0 1 1 *',
    deadline_seconds: 60,
    term_sets_per_round: 1,
    seed: 'fuzz',
    starts_at: '2030-01-01T00:00:00.000Z',
    ends_at: '2030-01-02T00:00:00.000Z',
  };
  const q = (v: string) => encodeURIComponent(wellFormed(v));
  return fc.oneof(
    mutate({ uses: 1, expires_in_hours: 1, label: 'fuzz' }, ['uses', 'expires_in_hours', 'label']).map((b) =>
      post('POST /admin/v1/enrollment-tokens', '/admin/v1/enrollment-tokens', json(b)),
    ),
    fc
      .tuple(hostileString(300), fc.option(hostileString(600)), hostileString(20_000))
      .map(([name, source, body]) =>
        post(
          'POST /admin/v1/term-lists',
          `/admin/v1/term-lists?name=${q(name)}${source === null ? '' : `&source=${q(source)}`}`,
          body,
          'text/plain; charset=utf-8',
        ),
      ),
    mutate(campaign, [
      'name',
      'mode',
      'term_list_ids',
      'conversations',
      'cadence',
      'deadline_seconds',
      'term_sets_per_round',
      'seed',
      'starts_at',
      'ends_at',
    ]).map((b) => post('POST /admin/v1/campaigns', '/admin/v1/campaigns', json(b))),
    // A run of the retention job: with the default windows it deletes nothing the fuzz made.
    mutate({ dry_run: true }, ['dry_run']).map((b) =>
      post('POST /admin/v1/retention/run', '/admin/v1/retention/run', json(b)),
    ),
    fc
      .tuple(hostileTimestamp, hostileTimestamp)
      .map(([s, e]) =>
        post(
          'POST /admin/v1/campaigns',
          '/admin/v1/campaigns',
          json({ ...campaign, starts_at: s, ends_at: e }),
        ),
      ),
    fc
      .constantFrom('/admin/v1/probes', '/admin/v1/accounts', '/admin/v1/campaigns', '/admin/v1/term-lists')
      .chain((url) =>
        fc.tuple(fc.constant(url), fc.option(hostileString(200).map((s) => s.replace(/[^\x20-\x7e]/g, '?')))),
      )
      .map(([url, badToken]) => ({
        endpoint: `GET ${url}`,
        build: (): BuiltRequest => ({
          target: 'collector',
          method: 'GET',
          url,
          headers: { authorization: badToken === null ? auth.authorization : `Bearer ${badToken}` },
          mustStore: [],
        }),
      })),
  );
}

// ---------------------------------------------------------------- research API

const RESEARCH_PATHS = [
  '/api/v1/outcomes',
  '/api/v1/export',
  '/api/v1/aggregation',
  '/api/v1/latency',
  '/api/v1/term-sets',
  '/api/v1/findings',
  '/api/v1/probes',
] as const;

const QUERY_KEYS = [
  'campaign',
  'platform',
  'terms',
  'kind',
  'status',
  'verdict',
  'sender_region',
  'recipient_region',
  'conversation_kind',
  'probe',
  'from',
  'to',
  'limit',
  'cursor',
  'order',
  'format',
  'by',
  'group_by',
  '__proto__',
  'constructor',
] as const;

/** A plausible-but-hostile value for a research filter. */
const queryValue = fc.oneof(
  hostileString(3_000),
  hostileNumber.map(String),
  hostileTimestamp.map(String),
  fc.constantFrom(
    '["天气"]',
    '[]',
    '[1]',
    '["a","a"]',
    'delivered,missing',
    'CN,US,CN',
    'hour,term_set',
    'minute,minute',
    'hour,kind',
    'day,kind',
    'csv',
    'ndjson',
    'desc',
    '00000000-0000-0000-0000-000000000000',
    Buffer.from(
      '{"v":1,"t":"0000-01-01T00:00:00.000000Z","c":"00000000-0000-0000-0000-000000000000","r":"00000000-0000-0000-0000-000000000000","o":"asc"}',
    ).toString('base64url'),
    Buffer.from(
      '{"v":1,"w":"9999-99-99T99:99:99.999999Z","i":"00000000-0000-0000-0000-000000000000"}',
    ).toString('base64url'),
    Buffer.from(
      '{"v":1,"t":"2026-02-30T25:00:00.000000Z","c":"00000000-0000-0000-0000-000000000000","r":"00000000-0000-0000-0000-000000000000","o":"asc"}',
    ).toString('base64url'),
  ),
);

function researchRequests(): fc.Arbitrary<FuzzRequest> {
  const pair = fc.tuple(fc.constantFrom(...QUERY_KEYS), queryValue, fc.boolean());
  return fc
    .tuple(
      fc.constantFrom(...RESEARCH_PATHS),
      fc.array(pair, { maxLength: 5 }),
      fc.option(fc.constantFrom('%', '%zz', '&&&', '=', 'a=1&a=2', '%00', '%ED%A0%80', '?', '#x', ';a=1')),
      fc.option(fc.constantFrom('text/csv', 'application/json', '*/*', 'text/csv;q=0.\u0000', '')),
    )
    .map(([path, pairs, raw, accept]) => {
      const parts = pairs.map(([k, v, encode]) =>
        encode
          ? `${encodeURIComponent(k)}=${encodeURIComponent(wellFormed(v))}`
          : `${k}=${v.replace(/[#\s]/g, '')}`,
      );
      if (raw !== null) parts.push(raw);
      // Non-ASCII left unencoded is percent-encoded as UTF-8 (as a client library would); lone surrogates as U+FFFD.
      const query = parts.join('&').replace(/[^\x21-\x7e]/gu, (ch) => encodeURIComponent(wellFormed(ch)));
      return {
        endpoint: `GET ${path}`,
        build: (): BuiltRequest => ({
          target: 'collector',
          method: 'GET',
          url: query ? `${path}?${query}` : path,
          headers: accept === null ? {} : { accept: accept.replace(/[^\x20-\x7e]/g, '') },
          mustStore: [],
        }),
      };
    });
}

/** The collector's endpoints in groups (the seeded suite runs each group as its own test). */
export function collectorGroups(ctx: CollectorContext) {
  return {
    events: mixedBatch(ctx),
    envelope: hostileEnvelope(ctx),
    foreign: foreignBatch(ctx),
    checkin: hostileCheckin(ctx),
    register: hostileRegister(),
    auth: hostileAuth(ctx),
    admin: adminRequests(ctx),
    research: researchRequests(),
  };
}

/** Every collector endpoint, weighted towards the probe API's events (the riskiest path). */
export function collectorRequest(ctx: CollectorContext): fc.Arbitrary<FuzzRequest> {
  const g = collectorGroups(ctx);
  return fc.oneof(
    { weight: 8, arbitrary: g.events },
    { weight: 2, arbitrary: g.envelope },
    { weight: 1, arbitrary: g.foreign },
    { weight: 3, arbitrary: g.checkin },
    { weight: 1, arbitrary: g.register },
    { weight: 1, arbitrary: g.auth },
    { weight: 3, arbitrary: g.admin },
    { weight: 4, arbitrary: g.research },
  );
}

// ---------------------------------------------------------------- testbed API

export function testbedRequest(ctx: TestbedContext): fc.Arbitrary<FuzzRequest> {
  const authed = (token: string | null): Record<string, string> =>
    token === null ? {} : { authorization: `Bearer ${token}` };
  const req = (
    endpoint: string,
    method: 'GET' | 'POST',
    url: string,
    body: unknown,
    token: string | null = ctx.token,
  ): FuzzRequest => ({
    endpoint,
    build: () => ({
      target: 'testbed',
      method,
      url,
      headers: {
        ...authed(token),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : json(body) }),
      mustStore: [],
    }),
  });
  const enc = (v: string) => encodeURIComponent(wellFormed(v));
  const badToken = fc.option(hostileString(300).map((s) => s.replace(/[^\x21-\x7e]/g, 'x')));
  return fc.oneof(
    fc
      .oneof(
        mutate({ handle: 'fuzz-user', password: 'pw', region: 'US' }, ['handle', 'password', 'region']),
        hostileRawBody,
      )
      .map((b) => req('POST /api/accounts', 'POST', '/api/accounts', b, null)),
    fc
      .oneof(mutate({ handle: ctx.handle, password: 'pw' }, ['handle', 'password']), hostileRawBody)
      .map((b) => req('POST /api/login', 'POST', '/api/login', b, null)),
    mutate({ kind: 'group', title: 'fuzz group', members: [ctx.otherHandle], with: ctx.otherHandle }, [
      'kind',
      'title',
      'members',
      'with',
    ]).map((b) => req('POST /api/conversations', 'POST', '/api/conversations', b)),
    fc
      .tuple(
        fc.oneof(
          mutate({ text: 'hello' }, ['text']),
          hostileString(12_000).map((text) => ({ text })),
        ),
        fc.boolean(),
      )
      .map(([b, own]) =>
        req(
          'POST /api/conversations/:id/messages',
          'POST',
          `/api/conversations/${own ? ctx.conversationId : 'nope'}/messages`,
          b,
        ),
      ),
    fc
      .tuple(
        fc.option(fc.oneof(queryValue, fc.constant(ctx.messageId))),
        fc.option(hostileNumber.map(String)),
        fc.option(hostileString(100)),
      )
      .map(([after, limit, id]) => {
        const qs = [
          ...(after === null ? [] : [`after=${enc(after)}`]),
          ...(limit === null ? [] : [`limit=${enc(limit)}`]),
        ].join('&');
        const conv = id === null ? ctx.conversationId : enc(id);
        return req(
          'GET /api/conversations/:id/messages',
          'GET',
          `/api/conversations/${conv}/messages${qs ? `?${qs}` : ''}`,
          undefined,
        );
      }),
    badToken.map((t) => req('GET /api/me', 'GET', '/api/me', undefined, t)),
    badToken.map((t) => req('GET /api/conversations', 'GET', '/api/conversations', undefined, t)),
    fc
      .tuple(hostileString(200), fc.option(hostileString(40)))
      .map(([token, last]) =>
        req(
          'GET /api/stream',
          'GET',
          `/api/stream?token=${enc(token)}${last === null ? '' : `&lastEventId=${enc(last)}`}`,
          undefined,
          null,
        ),
      ),
  );
}

// ---------------------------------------------------------------- the properties

/** A request body for a one-line report: long runs folded, at most 400 characters. */
export function shorten(body: string | undefined): string {
  if (body === undefined) return '-';
  const folded = body.replace(/(.{1,8}?)\1{8,}/gs, (_m, unit: string) => `${unit}…`);
  return folded.length > 400 ? `${folded.slice(0, 400)}…(${body.length} chars)` : folded;
}

export interface Answer {
  status: number;
  body: string;
}

/**
 * The properties for one answered request: no 5xx, and every valid event of a batch stored
 * exactly once (by event id, by this probe). Returns the failures (empty when it holds).
 */
export async function check(db: Db | undefined, req: BuiltRequest, answer: Answer): Promise<string[]> {
  const problems: string[] = [];
  if (answer.status >= 500) {
    problems.push(`${req.method} ${req.url.slice(0, 120)} → ${answer.status} (body: ${shorten(req.body)})`);
  }
  const ids = req.mustStore.filter((id) => /^[0-9a-f-]{36}$/.test(id));
  if (db && ids.length > 0) {
    const counts = await eventIdCounts(db, ids);
    // A valid event past the bound on reports per canary, account and type is acknowledged
    // `ignored` and must not be stored at all; every other valid event exactly once.
    const ignored = ignoredCopies(answer.body);
    const missing = req.mustStore.filter((id) => (counts.get(id) ?? 0) !== (ignored.has(id) ? 0 : 1));
    if (missing.length > 0) {
      problems.push(
        `valid events not stored exactly once (${missing.length} of ${req.mustStore.length}) after ${answer.status} ${answer.body.slice(0, 200)}`,
      );
    }
  }
  return problems;
}

/** Event ids an events answer acknowledged as `ignored` under the copies bound. */
function ignoredCopies(body: string): Set<string> {
  const out = new Set<string>();
  try {
    const parsed = JSON.parse(body) as {
      results?: { event_id?: unknown; status?: unknown; reason?: unknown }[];
    };
    for (const r of parsed.results ?? []) {
      if (
        r.status === 'ignored' &&
        typeof r.event_id === 'string' &&
        typeof r.reason === 'string' &&
        /events for this canary already/.test(r.reason)
      ) {
        out.add(r.event_id);
      }
    }
  } catch {
    // not an events answer: nothing was acknowledged as ignored
  }
  return out;
}
