/**
 * The xmpp adapter against a real censoring server: Prosody 0.12 with mod_firewall,
 * started by testbed/prosody from a testbed policy. Skips (with the reason in the
 * suite name) when Prosody is not installed, unless SILENTDROP_REQUIRE_ALL=1.
 *
 * Silence is checked with an ordering barrier, not a sleep: after the message under
 * test the same sender sends a control to the same conversation; the server delivers
 * one sender's messages in order, so once the control has arrived the test message
 * would have arrived too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  type ProsodyServer,
  prosodyAvailable,
  startProsody,
} from '../../../testbed/prosody/index.ts';
import { AdapterError } from '../types.ts';
import { nonce, Watched } from './test-support.ts';

const available = prosodyAvailable();
const required = process.env.SILENTDROP_REQUIRE_ALL === '1';

it.runIf(required)('finds Prosody and mod_firewall when SILENTDROP_REQUIRE_ALL=1', () => {
  expect(available, 'install prosody and prosody-modules (/usr/bin/prosody, mod_firewall)').toBe(true);
});

const NOTICE = 'This message contains inappropriate content';
const POLICY = {
  regions: ['CN', 'US'],
  rules: [
    {
      id: 'combo-709',
      match: { all: ['709', '律师'] },
      action: 'drop',
      scope: { conversation: 'group', sender_region: ['US'], recipient_region: ['CN'] },
    },
    {
      id: 'direct-only',
      match: { any: ['directword'] },
      action: 'drop',
      scope: { conversation: 'direct', recipient_region: ['CN'] },
    },
    {
      id: 'group-only',
      match: { any: ['groupword'] },
      action: 'drop',
      scope: { conversation: 'group', recipient_region: ['CN'] },
    },
    { id: 'overt', match: { any: ['法轮功'] }, action: 'notice', notice: NOTICE },
  ],
};
const PASSWORDS: Record<string, string> = { cn1: 'pw-cn1', cn2: 'pw-cn2', us1: 'pw-us1', us2: 'pw-us2' };

it('reports a server that refuses the connection as connection_lost', async () => {
  const port = await freePort();
  const w = new Watched(
    'us1@localhost',
    { host: '127.0.0.1', port, domain: 'localhost', jids: [], rooms: [] },
    'x',
  );
  await expect(w.adapter.connect()).rejects.toMatchObject({ name: 'AdapterError', code: 'connection_lost' });
  await w.stop();
});

describe.skipIf(!available)(
  `xmpp adapter on a real Prosody with mod_firewall${available ? '' : ' — SKIPPED: /usr/bin/prosody or mod_firewall not installed'}`,
  () => {
    let server: ProsodyServer;
    const users: Record<string, Watched> = {};
    const w = (name: string): Watched => {
      const x = users[name];
      if (!x) throw new Error(`no user ${name}`);
      return x;
    };
    let room: string;
    const direct = (a: string, b: string) =>
      `direct:${[`${a}@localhost`, `${b}@localhost`].sort().join(',')}`;

    beforeAll(async () => {
      server = await startProsody({
        policy: POLICY,
        accounts: [
          { user: 'cn1', password: PASSWORDS.cn1 ?? '', region: 'CN' },
          { user: 'cn2', password: PASSWORDS.cn2 ?? '', region: 'CN' },
          { user: 'us1', password: PASSWORDS.us1 ?? '', region: 'US' },
          { user: 'us2', password: PASSWORDS.us2 ?? '', region: 'US' },
        ],
        rooms: [{ name: 'g1', members: ['cn1', 'cn2', 'us1', 'us2'] }],
      });
      room = `group:${server.rooms[0]?.jid}`;
      try {
        await Promise.all(
          Object.entries(PASSWORDS).map(async ([name, pw]) => {
            users[name] = await new Watched(`${name}@localhost`, server, pw).start();
          }),
        );
      } catch (err) {
        await Promise.all(Object.values(users).map((u) => u.stop()));
        await server.stop();
        throw err;
      }
    });

    afterAll(async () => {
      await Promise.all(Object.values(users).map((u) => u.stop()));
      await server?.stop();
    });

    /** Sends `text` then a control from the same sender; resolves once `to` has the control. */
    async function sendWithBarrier(from: string, conversation: string, text: string, to: Watched[]) {
      const result = await w(from).adapter.send(conversation, text);
      const control = `control ${nonce()}`;
      expect((await w(from).adapter.send(conversation, control)).status).toBe('sent');
      await Promise.all(to.map((u) => u.waitFor(control)));
      return result;
    }

    it('lists a direct conversation per other account and the configured room', async () => {
      const list = await w('cn1').adapter.listConversations();
      expect(list.map((c) => c.ref).sort()).toEqual(
        [direct('cn1', 'cn2'), direct('cn1', 'us1'), direct('cn1', 'us2'), room].sort(),
      );
      expect(list.find((c) => c.ref === room)?.members).toHaveLength(4);
      expect(list.find((c) => c.ref === direct('cn1', 'us1'))).toMatchObject({ kind: 'direct' });
    });

    it('delivers a direct message under the same conversation ref on both sides', async () => {
      const text = `hello ${nonce()}`;
      const r = await w('us1').adapter.send(direct('us1', 'cn1'), text);
      expect(r.status).toBe('sent');
      const got = await w('cn1').waitFor(text);
      expect(got).toMatchObject({ conversation: direct('cn1', 'us1'), from: 'us1@localhost', text });
      expect(w('us1').has(text)).toBeUndefined(); // a sender does not observe its own message
    });

    it('drops a group message silently for the CN member while US members receive it', async () => {
      const text = `709 律师 ${nonce()}`;
      const r = await sendWithBarrier('us1', room, text, [w('cn1'), w('cn2'), w('us2')]);
      expect(r.status).toBe('sent'); // silent: the sender is not told
      expect(w('us2').has(text)).toMatchObject({ conversation: room, from: 'us1@localhost' });
      expect(w('cn1').has(text)).toBeUndefined();
      expect(w('cn2').has(text)).toBeUndefined();
      expect(w('us1').has(text)).toBeUndefined(); // own MUC echo is skipped
    });

    it('needs every term of a combination rule', async () => {
      const one = `709 only ${nonce()}`;
      const other = `律师 only ${nonce()}`;
      await sendWithBarrier('us1', room, one, [w('cn1')]);
      await sendWithBarrier('us1', room, other, [w('cn1')]);
      expect(w('cn1').has(one)).toBeDefined();
      expect(w('cn1').has(other)).toBeDefined();
    });

    it('applies a sender-region rule in a group chat to the real sender behind the room nick', async () => {
      const text = `709 律师 from cn ${nonce()}`; // combo-709 is for US senders only
      await sendWithBarrier('cn1', room, text, [w('cn2'), w('us2')]);
      expect(w('cn2').has(text)).toBeDefined();
      expect(w('us2').has(text)).toBeDefined();
    });

    it('reports a bounce as rejected with the notice text, and nobody receives the message', async () => {
      const text = `法轮功 ${nonce()}`;
      const r = await sendWithBarrier('us1', direct('us1', 'cn1'), text, [w('cn1')]);
      expect(r).toMatchObject({ status: 'rejected', failure: 'notice_shown', notice: NOTICE });
      expect(w('cn1').has(text)).toBeUndefined();

      const g = `法轮功 group ${nonce()}`;
      const rg = await sendWithBarrier('us2', room, g, [w('cn1'), w('us1')]);
      expect(rg).toMatchObject({ status: 'rejected', notice: NOTICE });
      expect(w('us1').has(g)).toBeUndefined();
    });

    it('scopes a direct-only rule to direct chats and a group-only rule to group chats', async () => {
      const dDirect = `directword ${nonce()}`;
      const dGroup = `directword ${nonce()}`;
      const gDirect = `groupword ${nonce()}`;
      const gGroup = `groupword ${nonce()}`;
      await sendWithBarrier('us1', direct('us1', 'cn1'), dDirect, [w('cn1')]);
      await sendWithBarrier('us1', room, dGroup, [w('cn1')]);
      await sendWithBarrier('us1', direct('us1', 'cn1'), gDirect, [w('cn1')]);
      await sendWithBarrier('us1', room, gGroup, [w('cn1'), w('us2')]);
      expect(w('cn1').has(dDirect)).toBeUndefined();
      expect(w('cn1').has(dGroup)).toBeDefined();
      expect(w('cn1').has(gDirect)).toBeDefined();
      expect(w('cn1').has(gGroup)).toBeUndefined();
      expect(w('us2').has(gGroup)).toBeDefined(); // US recipient unaffected
    });

    it('refuses a wrong password as login_required', async () => {
      const bad = new Watched('us1@localhost', server, 'wrong-password');
      await expect(bad.adapter.connect()).rejects.toMatchObject({
        name: 'AdapterError',
        code: 'login_required',
      });
      await bad.stop();
    });

    it('refuses to log in without TLS when settings.tls requires it', async () => {
      const strict = new Watched('us1@localhost', server, PASSWORDS.us1 ?? '', { tls: true });
      await expect(strict.adapter.connect()).rejects.toMatchObject({
        code: 'adapter_error',
        message: /offered no TLS/,
      });
      await strict.stop();
    });

    it('throws conversation_not_found for a ref that is not this account’s', async () => {
      await expect(w('us1').adapter.send('direct:cn1@localhost,cn2@localhost', 'x')).rejects.toBeInstanceOf(
        AdapterError,
      );
      await expect(w('us1').adapter.send('group:nope@conference.localhost', 'x')).rejects.toMatchObject({
        code: 'conversation_not_found',
      });
    });

    it('reconnects after Prosody restarts, rejoins the room and loses no direct message', async () => {
      await server.restart();
      // Sent while the recipient may still be reconnecting: Prosody keeps it offline for cn1.
      const early = `after restart ${nonce()}`;
      expect((await w('us1').adapter.send(direct('us1', 'cn1'), early)).status).toBe('sent');
      await w('cn1').waitFor(early, 15_000);

      // Group chats have no offline store: wait until every member is back in the room.
      const deadline = Date.now() + 15_000;
      for (;;) {
        const probe = `rejoin probe ${nonce()}`;
        await w('us1').adapter.send(room, probe);
        const ok = await Promise.all(
          ['cn1', 'cn2', 'us2'].map((n) =>
            w(n)
              .waitFor(probe, 300)
              .then(
                () => true,
                () => false,
              ),
          ),
        );
        if (ok.every(Boolean)) break;
        if (Date.now() > deadline) throw new Error('members did not rejoin the room after the restart');
      }
      const later = `709 律师 after restart ${nonce()}`;
      await sendWithBarrier('us1', room, later, [w('cn1'), w('us2')]);
      expect(w('us2').has(later)).toBeDefined();
      expect(w('cn1').has(later)).toBeUndefined(); // the firewall is back too
      expect(Object.values(users).flatMap((u) => u.errors)).toEqual([]);
    });
  },
);
