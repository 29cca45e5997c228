/**
 * The HTTP API of testbed/API.md as a fastify plugin: accounts, conversations,
 * messages and the SSE stream. Every body and query is validated by a schema;
 * errors are `{ error, message }` with a 4xx status.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { hashPassword, newToken, tokenKey, verifyPassword } from './auth.ts';
import type { Dispatcher } from './delivery.ts';
import type { Policy } from './policy.ts';
import type { RateLimiter } from './rate-limit.ts';
import { parseLastEventId, type SseHub } from './sse.ts';
import type { Account, Conversation, Store } from './store.ts';

export interface ApiContext {
  store: Store;
  policy: () => Policy;
  dispatcher: Dispatcher;
  hub: SseHub;
  rateLimiter?: RateLimiter;
}

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly error: string,
    message: string,
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

const Handle = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.@-]+$' });
const Password = Type.String({ minLength: 1, maxLength: 256 });

const SignUp = Type.Object(
  { handle: Handle, password: Password, region: Type.String({ pattern: '^[A-Z]{2}$' }) },
  { additionalProperties: false },
);
const Login = Type.Object(
  { handle: Type.String({ maxLength: 64 }), password: Password },
  { additionalProperties: false },
);
const NewConversation = Type.Object(
  {
    kind: Type.Union([Type.Literal('direct'), Type.Literal('group')]),
    with: Type.Optional(Handle),
    title: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    members: Type.Optional(Type.Array(Handle, { maxItems: 1000 })),
  },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const NewMessage = Type.Object(
  { text: Type.String({ minLength: 1, maxLength: 10_000 }) },
  { additionalProperties: false },
);
const ListQuery = Type.Object({
  after: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
});
const StreamQuery = Type.Object({
  token: Type.Optional(Type.String({ maxLength: 200 })),
  lastEventId: Type.Optional(Type.String({ maxLength: 20 })),
});

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  const m = typeof h === 'string' ? /^Bearer\s+(\S+)$/i.exec(h) : null;
  return m?.[1];
}

function conversationView(c: Conversation) {
  return { id: c.id, kind: c.kind, members: c.members, ...(c.title === undefined ? {} : { title: c.title }) };
}

export async function api(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { store } = ctx;

  const authenticate = (token: string | undefined): Account => {
    const account = token ? store.accountByToken(tokenKey(token)) : undefined;
    if (!account) throw new ApiError(401, 'login_required', 'log in first (missing or unknown token)');
    return account;
  };
  const limit = (account: Account): void => {
    const verdict = ctx.rateLimiter?.take(account.handle);
    if (verdict && !verdict.ok) {
      const s = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
      throw new ApiError(429, 'rate_limited', `too many requests; retry in ${s} s`, s);
    }
  };
  const memberConversation = (account: Account, id: string): Conversation => {
    const conv = store.conversation(id);
    if (!conv?.members.includes(account.handle)) {
      throw new ApiError(404, 'conversation_not_found', `no conversation ${id} for this account`);
    }
    return conv;
  };

  r.get('/api/health', async () => ({ ok: true }));
  r.get('/favicon.ico', async (_req, reply) => reply.code(204).send());

  r.post('/api/accounts', { schema: { body: SignUp } }, async (req, reply) => {
    const { handle, password, region } = req.body;
    if (!ctx.policy().regions.includes(region)) {
      throw new ApiError(400, 'bad_region', `region must be one of ${ctx.policy().regions.join(', ')}`);
    }
    if (store.account(handle)) throw new ApiError(409, 'handle_taken', `handle ${handle} is taken`);
    const hashed = await hashPassword(password);
    if (!store.addAccount({ handle, region, password: hashed })) {
      throw new ApiError(409, 'handle_taken', `handle ${handle} is taken`);
    }
    return reply.code(201).send({ handle, region });
  });

  r.post('/api/login', { schema: { body: Login } }, async (req) => {
    const account = store.account(req.body.handle);
    if (!account || !(await verifyPassword(req.body.password, account.password))) {
      throw new ApiError(401, 'bad_credentials', 'wrong handle or password');
    }
    const token = newToken();
    store.addToken(tokenKey(token), account.handle);
    return { token, handle: account.handle, region: account.region };
  });

  r.post('/api/logout', async (req, reply) => {
    const token = bearer(req);
    authenticate(token);
    if (token) store.removeToken(tokenKey(token));
    return reply.code(204).send();
  });

  r.get('/api/me', async (req) => {
    const account = authenticate(bearer(req));
    return { handle: account.handle, region: account.region };
  });

  r.get('/api/conversations', async (req) => {
    const account = authenticate(bearer(req));
    return store.conversationsOf(account.handle).map(conversationView);
  });

  r.post('/api/conversations', { schema: { body: NewConversation } }, async (req) => {
    const account = authenticate(bearer(req));
    limit(account);
    const body = req.body;
    const mustExist = (h: string): void => {
      if (!store.account(h)) throw new ApiError(404, 'account_not_found', `no account ${h}`);
    };
    if (body.kind === 'direct') {
      if (!body.with) throw new ApiError(400, 'bad_request', 'a direct conversation needs "with"');
      if (body.with === account.handle)
        throw new ApiError(400, 'bad_request', 'cannot open a direct chat with yourself');
      mustExist(body.with);
      return conversationView(store.direct(account.handle, body.with));
    }
    if (!body.title) throw new ApiError(400, 'bad_request', 'a group needs a "title"');
    const members = [account.handle, ...(body.members ?? []).filter((h) => h !== account.handle)];
    const unique = [...new Set(members)];
    unique.forEach(mustExist);
    return conversationView(store.group(body.title, unique));
  });

  r.post(
    '/api/conversations/:id/messages',
    { schema: { params: IdParams, body: NewMessage } },
    async (req, reply) => {
      const account = authenticate(bearer(req));
      const conv = memberConversation(account, req.params.id);
      limit(account);
      const result = ctx.dispatcher.send(conv, account, req.body.text);
      if (result.status === 'rejected') {
        return reply.code(403).send({ error: 'content_rejected', message: result.notice });
      }
      return { id: result.id, status: result.status, at: result.at };
    },
  );

  r.get(
    '/api/conversations/:id/messages',
    { schema: { params: IdParams, querystring: ListQuery } },
    async (req) => {
      const account = authenticate(bearer(req));
      const conv = memberConversation(account, req.params.id);
      const entries = store.timeline(account.handle).filter((e) => e.message.conversation === conv.id);
      let start = 0;
      if (req.query.after !== undefined) {
        const at = entries.findIndex((e) => e.message.id === req.query.after);
        if (at < 0)
          throw new ApiError(404, 'message_not_found', `no message ${req.query.after} in this conversation`);
        start = at + 1;
      }
      return entries.slice(start, start + (req.query.limit ?? 100)).map((e) => e.message);
    },
  );

  r.get('/api/stream', { schema: { querystring: StreamQuery } }, async (req, reply) => {
    const account = authenticate(bearer(req) ?? req.query.token);
    const last = parseLastEventId(req.headers['last-event-id'] ?? req.query.lastEventId);
    reply.hijack();
    ctx.hub.stream(reply.raw, account.handle, last);
  });
}
