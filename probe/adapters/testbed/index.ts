/**
 * The testbed adapter: drives one account on silentdrop's local testbed platform
 * through its HTTP API and SSE stream (testbed/API.md). It never imports testbed/.
 *
 * Account config:
 *   - platform: testbed
 *     handle: cn-li
 *     region: CN
 *     credentials: { password: env:TESTBED_PASSWORD_CN_LI }
 *     settings:
 *       url: http://127.0.0.1:4100     # the testbed's base URL (required)
 *       timeout_ms: 15000              # per API call (send timeout)
 *       stall_ms: 45000                # stream silent this long → reconnect
 *       sign_up: true                  # create the account (POST /api/accounts) if login fails
 */
import { type Adapter, AdapterError, type AdapterFactory, type ConversationInfo } from '../types.ts';
import { errorCode, errorMessage, httpFailure, TestbedApi } from './api.ts';
import { TestbedStream } from './stream.ts';

const factory: AdapterFactory = {
  name: 'testbed',
  version: '1.0.0',
  create(account, ctx) {
    const url = account.settings.url;
    if (typeof url !== 'string' || !/^https?:\/\//.test(url)) {
      throw new AdapterError(
        'adapter_error',
        `account ${account.handle}: settings.url must be the testbed's http(s) URL`,
      );
    }
    const password = account.credentials.password;
    if (typeof password !== 'string' || password.length === 0) {
      throw new AdapterError('login_required', `account ${account.handle}: credentials.password is required`);
    }
    const num = (v: unknown, d: number) => (typeof v === 'number' && v > 0 ? v : d);
    const api = new TestbedApi({
      baseUrl: url,
      handle: account.handle,
      password,
      timeoutMs: num(account.settings.timeout_ms, 15_000),
    });
    let stream: TestbedStream | undefined;

    const adapter: Adapter = {
      async connect() {
        try {
          await api.login();
        } catch (err) {
          if (
            !(
              err instanceof AdapterError &&
              err.code === 'login_required' &&
              account.settings.sign_up === true
            )
          ) {
            throw err;
          }
          await api.signUp(account.region);
          await api.login();
        }
      },

      async listConversations(): Promise<ConversationInfo[]> {
        const res = await api.call('GET', '/api/conversations');
        if (res.status !== 200 || !Array.isArray(res.body)) throw httpFailure('list conversations', res);
        return (res.body as { id: unknown; kind: unknown; members: unknown; title?: unknown }[])
          .filter((c) => (c.kind === 'direct' || c.kind === 'group') && Array.isArray(c.members))
          .map((c) => ({
            ref: String(c.id),
            kind: c.kind as 'direct' | 'group',
            members: (c.members as unknown[]).map(String),
            ...(typeof c.title === 'string' && c.title ? { title: c.title } : {}),
          }));
      },

      async send(conversation, text) {
        const res = await api.call(
          'POST',
          `/api/conversations/${encodeURIComponent(conversation)}/messages`,
          { text },
        );
        if (res.status === 200) {
          const b = (res.body ?? {}) as { id?: unknown; at?: unknown };
          const at = typeof b.at === 'string' ? new Date(b.at) : new Date();
          return {
            status: 'sent',
            at: Number.isNaN(at.getTime()) ? new Date() : at,
            ...(b.id !== undefined ? { platformMessageId: String(b.id) } : {}),
          };
        }
        if (res.status === 403 && errorCode(res) === 'content_rejected') {
          return {
            status: 'rejected',
            at: new Date(),
            failure: 'notice_shown',
            ...(errorMessage(res) !== undefined ? { notice: errorMessage(res) } : {}),
          };
        }
        throw httpFailure(`send to ${conversation}`, res);
      },

      async observe(onMessage, onError) {
        await stream?.stop();
        stream = new TestbedStream({
          api,
          handle: account.handle,
          stateDir: ctx.stateDir,
          logger: ctx.logger,
          stallMs: num(account.settings.stall_ms, 45_000),
          onMessage,
          onError,
        });
        await stream.start();
      },

      async close() {
        await stream?.stop();
        stream = undefined;
      },
    };
    return adapter;
  },
};

export default factory;
