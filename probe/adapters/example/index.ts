/**
 * THE TEMPLATE ADAPTER: copy this folder to add a platform.
 *
 * It drives an in-memory loopback "platform" (./loopback.ts) so that it runs anywhere
 * and shows every part of the contract (../types.ts) without a network:
 *
 *   connect()            log in with credentials; throw AdapterError('login_required')
 *                        when the platform refuses them
 *   listConversations()  the conversations the account is in, with every member
 *   send()               `sent` when the sender's client shows it as sent (even if the
 *                        platform then drops it silently: that is data, not an error);
 *                        `rejected` + notice when the sender is shown a notice; throw
 *                        AdapterError only when the send could not run at all
 *   observe()            call onMessage for each message *others* sent to this account,
 *                        with text and sender exactly as the client shows them
 *   close()              stop observing, release connections
 *
 * Account config (probe.yaml):
 *   - platform: example
 *     handle: alice
 *     region: US
 *     credentials: { password: secret }
 *     settings:
 *       network: demo                 # accounts on the same network see each other
 *       conversations:                # created on connect if missing
 *         - { id: g1, kind: group, members: [alice, bob] }
 *       notice_terms: [forbidden]     # messages containing these are refused with a notice
 *
 * To add a platform: copy this folder to probe/adapters/<name>/, set `name` below to
 * the folder name, add `<name>: () => import('./<name>/index.ts')` to ../registry.ts,
 * write a spec in docs/adapters/<name>.md and run the scenario table against it.
 */
import { type Adapter, AdapterError, type AdapterFactory, type ConversationInfo } from '../types.ts';
import { type LoopbackConversation, loopbackNetwork } from './loopback.ts';

const factory: AdapterFactory = {
  name: 'example',
  version: '1.0.0',
  create(account, ctx) {
    const network = loopbackNetwork(
      typeof account.settings.network === 'string' ? account.settings.network : 'default',
    );
    const noticeTerms = Array.isArray(account.settings.notice_terms)
      ? account.settings.notice_terms.filter((t): t is string => typeof t === 'string')
      : [];
    let connected = false;
    let unlisten: (() => void) | undefined;

    const requireConnected = (): void => {
      if (!connected) throw new AdapterError('login_required', 'not connected: call connect() first');
    };

    const adapter: Adapter = {
      async connect() {
        const password = account.credentials.password;
        if (typeof password !== 'string' || !network.login(account.handle, password)) {
          throw new AdapterError('login_required', `login refused for ${account.handle}`);
        }
        const declared = Array.isArray(account.settings.conversations) ? account.settings.conversations : [];
        for (const c of declared as LoopbackConversation[]) network.addConversation(c);
        connected = true;
        ctx.logger.debug('example adapter connected');
      },

      async listConversations(): Promise<ConversationInfo[]> {
        requireConnected();
        return network.conversationsOf(account.handle).map((c) => ({
          ref: c.id,
          kind: c.kind,
          members: [...c.members],
          ...(c.title ? { title: c.title } : {}),
        }));
      },

      async send(conversation, text) {
        requireConnected();
        const conv = network.conversation(conversation);
        if (!conv?.members.includes(account.handle)) {
          throw new AdapterError(
            'conversation_not_found',
            `no conversation ${conversation} for ${account.handle}`,
          );
        }
        const hit = noticeTerms.find((t) => text.includes(t));
        if (hit) {
          return {
            status: 'rejected',
            at: new Date(),
            failure: 'notice_shown',
            notice: 'Message not sent: content',
          };
        }
        const m = network.post(conv, account.handle, text);
        return { status: 'sent', at: m.at, platformMessageId: m.id };
      },

      async observe(onMessage, onError) {
        requireConnected();
        unlisten?.();
        unlisten = network.listen(account.handle, (m) => {
          Promise.resolve(
            onMessage({
              conversation: m.conversation,
              from: m.from,
              text: m.text,
              at: m.at,
              platformMessageId: m.id,
            }),
          ).catch((err: unknown) => onError(err instanceof Error ? err : new Error(String(err))));
        });
      },

      async close() {
        unlisten?.();
        unlisten = undefined;
        connected = false;
      },
    };
    return adapter;
  },
};

export default factory;
