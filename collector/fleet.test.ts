import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicKeyToBase64 } from '../protocol/signing.ts';
import { runAlerts, SIGNATURE_HEADER, signWebhookBody } from './alerts.ts';
import { buildApp } from './app.ts';
import { findAccounts } from './db/accounts.ts';
import { rows } from './db/open.ts';
import { materialiseDueRounds } from './rounds.ts';
import { describeEachDb } from './test-support/db.ts';
import {
  account,
  checkin,
  checkinBody,
  enrollProbe,
  signedPost,
  TEST_ADMIN_TOKEN,
  TEST_HASH_KEY,
  type TestProbe,
} from './test-support/probe.ts';
import { onAppWorld, type World } from './test-support/world.ts';

const auth = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

/** A local webhook receiver that answers with the next status of `script` (then 200). */
async function receiver(script: number[] = []) {
  const got: { headers: IncomingHttpHeaders; body: string }[] = [];
  const statuses = [...script];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.statusCode = statuses.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return { url, got, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describeEachDb('fleet operations', (getDb) => {
  let app: FastifyInstance;
  let w: World;
  onAppWorld(getDb, (a, world) => {
    app = a;
    w = world;
  });

  const admin = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown) =>
    app.inject({
      method,
      url,
      headers: auth,
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
  const probeInfo = async (id: string) =>
    ((await admin('GET', '/admin/v1/probes')).json().probes as Record<string, unknown>[]).find(
      (p) => p.id === id,
    );
  const register = (token: string, key = generateKeyPairSync('ed25519').publicKey) =>
    app.inject({
      method: 'POST',
      url: '/probe/v1/register',
      payload: {
        protocol: 1,
        enrollment_token: token,
        public_key: publicKeyToBase64(key),
        country: 'DE',
        asn: 3320,
        software_version: 'test',
      },
    });
  const enrollmentToken = async () =>
    (await admin('POST', '/admin/v1/enrollment-tokens', { uses: 1 })).json().token;

  it('a revoked probe gets 401 from then on and shows as revoked', async () => {
    const p = await enrollProbe(app, { country: 'HK' });
    const handle = `erin-${randomBytes(3).toString('hex')}`;
    await checkin(app, p, [account('testbed', handle, 'HK')], []);
    expect((await probeInfo(p.id))?.health).toBe('ok');
    const res = await admin('POST', `/admin/v1/probes/${p.id}/revoke`, {});
    expect(res.statusCode).toBe(200);
    expect(res.json().replacement_token).toBeNull();
    for (const path of ['/probe/v1/checkin', '/probe/v1/events']) {
      const body = path.endsWith('checkin') ? checkinBody([], []) : { protocol: 1, events: [] };
      const refused = await signedPost(app, p, path, body);
      expect(refused.statusCode).toBe(401);
    }
    const info = await probeInfo(p.id);
    expect(info?.health).toBe('revoked');
    expect(info?.revoked_at).toBe(res.json().revoked_at);
    // Revoking again keeps the first time; an unknown probe is a 404.
    expect((await admin('POST', `/admin/v1/probes/${p.id}/revoke`, {})).json().revoked_at).toBe(
      res.json().revoked_at,
    );
    expect(
      (await admin('POST', '/admin/v1/probes/00000000-0000-4000-8000-000000000000/revoke', {})).statusCode,
    ).toBe(404);
  });

  it('a probe that reports its data folder full shows storage_full and raises one alert until it has space', async () => {
    const p = await enrollProbe(app, { country: 'KZ' });
    const accounts = [account('testbed', `kim-${randomBytes(3).toString('hex')}`, 'KZ')];
    const report = (storage?: object) =>
      signedPost(app, p, '/probe/v1/checkin', {
        ...checkinBody(accounts, []),
        ...(storage ? { storage } : {}),
      });
    const fullAlerts = async () =>
      (
        await rows<{ since: string }>(
          getDb().db,
          sql`select payload->>'storage_full_since' as since from alerts
            where kind = 'probe_storage_full' and payload->>'probe_id' = ${p.id} order by created_at`,
        )
      ).map((r) => r.since);
    expect((await report()).statusCode).toBe(200);
    expect(await probeInfo(p.id)).toMatchObject({ health: 'ok', storage_full_since: null });

    const full = { state: 'full', since: new Date().toISOString(), code: 'ENOSPC' };
    expect((await report(full)).statusCode).toBe(200);
    const first = await probeInfo(p.id);
    expect(first?.health).toBe('storage_full');
    expect(typeof first?.storage_full_since).toBe('string');
    // Still full at the next check-ins: the same since, one alert however often the sweep runs.
    await report(full);
    expect((await probeInfo(p.id))?.storage_full_since).toBe(first?.storage_full_since);
    await runAlerts(getDb().db, new Date(), {});
    await runAlerts(getDb().db, new Date(), {});
    expect(await fullAlerts()).toHaveLength(1);
    // A check-in without the field (an older probe) keeps the state; `ok` clears it.
    await report();
    expect((await probeInfo(p.id))?.health).toBe('storage_full');
    await report({ state: 'ok' });
    expect(await probeInfo(p.id)).toMatchObject({ health: 'ok', storage_full_since: null });
    await runAlerts(getDb().db, new Date(), {});
    expect(await fullAlerts()).toHaveLength(1);
    // Full again later: a new episode, a new alert.
    await report(full);
    await runAlerts(getDb().db, new Date(), {});
    expect(await fullAlerts()).toHaveLength(2);
    // The research API shows it too (country and ASN only, as for every probe field).
    const research = await app.inject({ url: '/api/v1/probes' });
    expect(research.statusCode, research.body).toBe(200);
    const mine = (research.json().probes as Record<string, unknown>[]).find((x) => x.id === p.id);
    expect(typeof mine?.storage_full_since).toBe('string');
  });

  it('a replacement enrolled with the revocation token takes over the accounts, keeping their ids', async () => {
    const old = await enrollProbe(app, { country: 'CN' });
    const handle = `frank-${randomBytes(3).toString('hex')}`;
    await checkin(app, old, [account('testbed', handle, 'CN')], []);
    const [before] = await findAccounts(getDb().db, [{ platform: 'testbed', handle }]);

    // Before a replacement, a new probe claiming the account is refused (403).
    const intruder = await enrollProbe(app, { country: 'CN' });
    const refused = await signedPost(
      app,
      intruder,
      '/probe/v1/checkin',
      checkinBody([account('testbed', handle, 'CN')], []),
    );
    expect(refused.statusCode).toBe(403);

    const revoked = (await admin('POST', `/admin/v1/probes/${old.id}/revoke`, { replacement: true })).json();
    expect(typeof revoked.replacement_token).toBe('string');
    const keys = generateKeyPairSync('ed25519');
    const reg = await register(revoked.replacement_token, keys.publicKey);
    expect(reg.statusCode).toBe(201);
    const replacement: TestProbe = { id: reg.json().probe_id, ...keys };
    await checkin(app, replacement, [account('testbed', handle, 'CN')], []);
    const [after] = await findAccounts(getDb().db, [{ platform: 'testbed', handle }]);
    expect(after?.id).toBe(before?.id);
    expect(after?.probeId).toBe(replacement.id);
    expect((await probeInfo(old.id))?.replaced_by).toBe(replacement.id);
    expect((await signedPost(app, old, '/probe/v1/checkin', checkinBody([], []))).statusCode).toBe(401);
    // The replacement token is single use.
    expect((await register(revoked.replacement_token)).statusCode).toBe(401);
  });

  it('registering the same key again gives its probe id back; a revoked key is refused', async () => {
    const token = await enrollmentToken();
    const key = generateKeyPairSync('ed25519').publicKey;
    const first = await register(token, key);
    expect(first.statusCode).toBe(201);
    // The token is used up, but a probe that lost the answer gets its id back.
    const again = await register(token, key);
    expect(again.statusCode).toBe(200);
    expect(again.json().probe_id).toBe(first.json().probe_id);
    const other = await register(await enrollmentToken(), key);
    expect(other.json().probe_id).toBe(first.json().probe_id);
    const [counted] = await rows<{ n: number }>(
      getDb().db,
      sql`select count(*)::int as n from probes where public_key = ${publicKeyToBase64(key)}`,
    );
    expect(counted?.n).toBe(1);
    await admin('POST', `/admin/v1/probes/${first.json().probe_id}/revoke`, {});
    const revoked = await register(await enrollmentToken(), key);
    expect(revoked.statusCode).toBe(403);
    expect(revoked.json().code).toBe('SD_ERR_PROBE_REVOKED');
  });

  it('a paused campaign plans no rounds until resumed; a stopped one ends', async () => {
    const list = (
      await app.inject({
        method: 'POST',
        url: `/admin/v1/term-lists?name=${`fleet-${randomBytes(3).toString('hex')}`}`,
        headers: { ...auth, 'content-type': 'text/plain; charset=utf-8' },
        payload: '六四\n',
      })
    ).json().term_list.id;
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    const created = (
      await admin('POST', '/admin/v1/campaigns', {
        name: `fleet-${randomBytes(3).toString('hex')}`,
        mode: 'monitor',
        term_list_ids: [list],
        conversations: { platform: 'testbed', refs: [w.group] },
        cadence: '* * * * *',
        deadline_seconds: 120,
        seed: 'fleet',
        starts_at: new Date(minute - 10 * 60_000).toISOString(),
      })
    ).json();
    const roundsOf = async () =>
      (
        await rows<{ n: number }>(
          getDb().db,
          sql`select count(*)::int as n from rounds where campaign_id = ${created.id}`,
        )
      )[0]!.n;

    const paused = await admin('POST', `/admin/v1/campaigns/${created.id}/pause`);
    expect(paused.json()).toMatchObject({ id: created.id, active: false, ends_at: null });
    await materialiseDueRounds(getDb().db, new Date(minute - 5 * 60_000 - 1000), 60_000);
    expect(await roundsOf()).toBe(0);

    expect((await admin('POST', `/admin/v1/campaigns/${created.id}/resume`)).json().active).toBe(true);
    await materialiseDueRounds(getDb().db, new Date(minute - 5 * 60_000 - 1000), 60_000);
    const planned = await roundsOf();
    expect(planned).toBeGreaterThan(0);

    const stopped = (await admin('POST', `/admin/v1/campaigns/${created.id}/stop`)).json();
    expect(stopped.active).toBe(false);
    expect(Date.parse(stopped.ends_at)).toBeLessThanOrEqual(Date.now());
    await materialiseDueRounds(getDb().db, new Date(minute + 60_000), 60_000);
    expect(await roundsOf()).toBe(planned);
    const listed = (await admin('GET', '/admin/v1/campaigns'))
      .json()
      .campaigns.find((c: { id: string }) => c.id === created.id);
    expect(listed).toMatchObject({ active: false, ends_at: stopped.ends_at });
    expect(
      (await admin('POST', '/admin/v1/campaigns/00000000-0000-4000-8000-000000000000/pause')).statusCode,
    ).toBe(404);
  });

  it("exports each probe's last check-in time as a Prometheus gauge", async () => {
    await checkin(app, w.us, [account('testbed', w.handles.alice, 'US')], []);
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    const line = text
      .split('\n')
      .find((l) => l.startsWith('sd_probe_last_checkin_timestamp_seconds{') && l.includes(w.us.id));
    expect(line).toBeDefined();
    const value = Number(line!.split(' ').at(-1));
    expect(Math.abs(value - Date.now() / 1000)).toBeLessThan(60);
  });

  describe('admin token rotation', () => {
    const configured = `configured-admin-token-${randomBytes(6).toString('hex')}`;
    let clock = Date.now();
    let app: FastifyInstance;
    beforeAll(async () => {
      app = await buildApp({
        db: getDb().db,
        config: { adminToken: configured, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
        now: () => new Date(clock),
      });
    });
    afterAll(async () => {
      await app.close();
    });
    const probes = (token: string) =>
      app.inject({ method: 'GET', url: '/admin/v1/probes', headers: { authorization: `Bearer ${token}` } });
    const rotate = (token: string, grace?: number) =>
      app.inject({
        method: 'POST',
        url: '/admin/v1/admin-token/rotate',
        headers: { authorization: `Bearer ${token}` },
        payload: grace === undefined ? {} : { grace_minutes: grace },
      });

    it('retires the token used, at once or after a grace period, and the new one works', async () => {
      expect((await probes(configured)).statusCode).toBe(200);
      const r1 = await rotate(configured, 10);
      expect(r1.statusCode).toBe(201);
      const second: string = r1.json().token;
      // Within the grace period both work.
      expect((await probes(configured)).statusCode).toBe(200);
      expect((await probes(second)).statusCode).toBe(200);
      clock += 11 * 60_000;
      expect((await probes(configured)).statusCode).toBe(401);
      expect((await probes(second)).statusCode).toBe(200);

      const third: string = (await rotate(second)).json().token;
      expect((await probes(second)).statusCode).toBe(401);
      expect((await probes(third)).statusCode).toBe(200);
      // A retired token cannot rotate itself back in.
      expect((await rotate(second)).statusCode).toBe(401);
      expect((await probes('x'.repeat(600))).statusCode).toBe(401);
    });
  });

  describe('alerts', () => {
    async function settledFinding(verdict: string) {
      const [row] = await rows<{ id: string }>(
        getDb().db,
        sql`insert into findings (campaign_id, term_set, scope, key, window_start, window_end, verdict, kind,
            test_trials, control_trials, test_rate, control_rate, settled, since)
          values (${w.campaignId}, array['六四', '天安门'],
            ${JSON.stringify({ platform: 'testbed', sender_region: 'US', recipient_region: 'CN', conversation_kind: 'group' })}::jsonb,
            ${`alert-test-${randomBytes(4).toString('hex')}`}, now() - interval '1 hour', now(), ${verdict}, 'missing',
            12, 12, 1, 0, true, now() - interval '1 hour')
          returning id`,
      );
      return row!.id;
    }

    it('delivers each alert once per webhook, signed, in its format, retrying failures with backoff', async () => {
      const generic = await receiver([500, 503]);
      const slack = await receiver();
      const broken = await receiver(Array(10).fill(500));
      try {
        const g = (await admin('POST', '/admin/v1/webhooks', { url: generic.url })).json();
        const s = (
          await admin('POST', '/admin/v1/webhooks', {
            url: slack.url,
            format: 'slack',
            kinds: ['finding_settled'],
          })
        ).json();
        await admin('POST', '/admin/v1/webhooks', {
          url: broken.url,
          format: 'matrix',
          kinds: ['finding_settled'],
        });
        expect(g.secret).toMatch(/^sdhook_/);

        const findingId = await settledFinding('suppressed');
        await settledFinding('none'); // not an alert
        const silent = await enrollProbe(app, { country: 'IR', asn: 197207 });
        // Two hours without a check-in, dead letters reported by another probe.
        await getDb().db.execute(
          sql`update probes set last_checkin_at = now() - interval '2 hours', registered_at = now() - interval '3 hours'
            where id = ${silent.id}`,
        );
        await signedPost(
          app,
          w.cn,
          '/probe/v1/checkin',
          checkinBody(
            [account('testbed', w.handles.bob, 'CN'), account('testbed', w.handles.carol, 'AU')],
            [],
            {
              dead_letters: 3,
            },
          ),
        );

        const options = { retryBaseMs: 1, maxAttempts: 4 };
        let now = Date.now();
        const first = await runAlerts(getDb().db, new Date(now), options);
        expect(first.detected).toBeGreaterThanOrEqual(3);
        for (let i = 0; i < 6; i++) {
          now += 60_000;
          const again = await runAlerts(getDb().db, new Date(now), options);
          expect(again.detected).toBe(0); // idempotent
        }

        const bodies = generic.got.map((x) => JSON.parse(x.body) as Record<string, unknown>);
        expect(bodies.some((b) => b.kind === 'finding_settled' && b.finding_id === findingId)).toBe(true);
        expect(bodies.some((b) => b.kind === 'probe_silent' && b.probe_id === silent.id)).toBe(true);
        expect(
          bodies.some((b) => b.kind === 'dead_letters' && b.probe_id === w.cn.id && b.dead_letters === 3),
        ).toBe(true);
        expect(bodies.some((b) => b.verdict === 'none')).toBe(false);
        // The first two requests failed (500, 503) and were retried: every alert arrived once more.
        const ids = bodies.map((b) => b.id as string);
        expect(generic.got.length).toBe(new Set(ids).size + 2);
        expect(ids.slice(2)).toEqual(expect.arrayContaining([ids[0], ids[1]]));
        expect(new Set(ids.slice(2)).size).toBe(ids.length - 2);
        for (const req of generic.got) {
          const header = String(req.headers[SIGNATURE_HEADER]);
          const t = Number(/t=(\d+)/.exec(header)?.[1]);
          expect(header).toBe(signWebhookBody(g.secret, req.body, new Date(t * 1000)));
        }
        // Slack: only its kind, a text body.
        expect(slack.got.length).toBe(1);
        const sb = JSON.parse(slack.got[0]!.body);
        expect(Object.keys(sb)).toEqual(['text']);
        expect(sb.text).toContain('六四 + 天安门');
        expect(sb.text).toContain('suppressed');
        expect(slack.got[0]!.headers[SIGNATURE_HEADER]).toBe(
          signWebhookBody(
            s.secret,
            slack.got[0]!.body,
            new Date(Number(/t=(\d+)/.exec(String(slack.got[0]!.headers[SIGNATURE_HEADER]))?.[1]) * 1000),
          ),
        );
        // The always-failing receiver was tried maxAttempts times, then given up.
        expect(broken.got.length).toBe(4);
        expect(JSON.parse(broken.got[0]!.body)).toHaveProperty('html');
        const hooks = (await admin('GET', '/admin/v1/webhooks')).json().webhooks as Record<string, unknown>[];
        const b = hooks.find((h) => h.url === broken.url);
        expect(b).toMatchObject({ failed: 1, delivered: 0, pending: 0, last_error: 'HTTP 500' });
        expect(hooks.find((h) => h.url === generic.url)).toMatchObject({ failed: 0, pending: 0 });
        // No secret is ever listed.
        expect(JSON.stringify(hooks)).not.toContain('sdhook_');
      } finally {
        await Promise.all([generic.close(), slack.close(), broken.close()]);
      }
    });

    it('a webhook added later does not replay earlier alerts; one can be removed', async () => {
      await settledFinding('delayed');
      await runAlerts(getDb().db, new Date(), { retryBaseMs: 1 });
      const late = await receiver();
      try {
        const hook = (await admin('POST', '/admin/v1/webhooks', { url: late.url })).json();
        await runAlerts(getDb().db, new Date(), { retryBaseMs: 1 });
        expect(late.got.length).toBe(0);
        expect((await admin('DELETE', `/admin/v1/webhooks/${hook.webhook.id}`)).statusCode).toBe(204);
        expect((await admin('DELETE', `/admin/v1/webhooks/${hook.webhook.id}`)).statusCode).toBe(404);
        expect((await admin('POST', '/admin/v1/webhooks', { url: 'ftp://example.org/x' })).statusCode).toBe(
          400,
        );
        expect(
          (await admin('POST', '/admin/v1/webhooks', { url: 'http://u:p@127.0.0.1/x' })).statusCode,
        ).toBe(400);
      } finally {
        await late.close();
      }
    });
  });
});

describe('webhook signature', () => {
  it('is HMAC-SHA256 over "<t>.<body>" and changes with the body', () => {
    const at = new Date('2026-12-01T00:00:00Z');
    const a = signWebhookBody('k', '{"a":1}', at);
    expect(a).toMatch(/^t=1796083200,v1=[0-9a-f]{64}$/);
    expect(signWebhookBody('k', '{"a":2}', at)).not.toBe(a);
  });
});
