/**
 * The xmpp adapter: drives one account on an XMPP server with xmpp.js
 * (`@xmpp/client`): one-to-one chats without roster entries, and MUC rooms joined
 * with history off. Spec: docs/adapters/xmpp.md.
 *
 * Account config (probe.yaml), or one entry of an accounts file (issue 7):
 *   - platform: xmpp
 *     handle: cn1@localhost            # the account's bare JID
 *     region: CN
 *     credentials: { password: env:XMPP_PASSWORD_CN1 }
 *     settings:
 *       host: 127.0.0.1                # default: the JID's domain
 *       port: 5222
 *       domain: localhost              # default: the JID's domain
 *       tls: false                     # false (plain: loopback/test only) | true = "starttls" (required) | "direct"
 *       accounts: [us1@localhost]      # other accounts: one direct conversation each
 *       groups:                        # rooms; joined when this account is a member
 *         - { room: g1@conference.localhost, members: [cn1@localhost, us1@localhost] }
 *       send_timeout_ms: 10000  bounce_wait_ms: 0  join_timeout_ms: 10000
 *       connect_timeout_ms: 15000  keepalive_ms: 30000
 *       reconnect: { min_ms: 250, max_ms: 30000, give_up_ms: 600000 }
 *       resource: silentdrop  nick: <local part>
 *
 * Conversation refs: `direct:<jidA>,<jidB>` (sorted bare JIDs, the same on both sides)
 * and `group:<room JID>`; see ./settings.ts.
 */
import { type Adapter, AdapterError, type AdapterFactory, type ConversationInfo } from '../types.ts';
import { XmppSession } from './session.ts';
import { directRef, groupRef, parseRef, parseSettings } from './settings.ts';

export { classifyXmppError } from './session.ts';
export { directRef, groupRef, parseRef } from './settings.ts';

const factory: AdapterFactory = {
  name: 'xmpp',
  version: '1.0.0',
  create(account, ctx) {
    const settings = parseSettings(account.handle, account.settings);
    const password = account.credentials.password;
    if (typeof password !== 'string' || password.length === 0) {
      throw new AdapterError('login_required', `account ${account.handle}: credentials.password is required`);
    }
    const log = ctx.logger.child({ adapter: 'xmpp' });
    const session = new XmppSession(account.handle, password, settings, log);
    let connected = false;

    const adapter: Adapter = {
      async connect() {
        await session.connect();
        connected = true;
      },

      async listConversations(): Promise<ConversationInfo[]> {
        const me = session.jid;
        return [
          ...settings.peers.map((peer) => ({
            ref: directRef(me, peer),
            kind: 'direct' as const,
            members: [me, peer],
          })),
          ...settings.groups.map((g) => ({
            ref: groupRef(g.room),
            kind: 'group' as const,
            members: [...g.members],
            title: g.room,
          })),
        ];
      },

      async send(conversation, text) {
        if (!connected) throw new AdapterError('login_required', 'xmpp adapter: call connect() first');
        const target = parseRef(conversation, session.jid);
        if (!target) {
          throw new AdapterError(
            'conversation_not_found',
            `not an xmpp conversation of ${session.jid}: ${conversation}`,
          );
        }
        return target.kind === 'group'
          ? session.send('group', target.room, text)
          : session.send('direct', target.peer, text);
      },

      async observe(onMessage, onError) {
        if (!connected) throw new AdapterError('login_required', 'xmpp adapter: call connect() first');
        session.observe(onMessage, onError);
      },

      async close() {
        connected = false;
        await session.close();
      },
    };
    return adapter;
  },
};

export default factory;
