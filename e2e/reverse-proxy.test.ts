import { generateKeyPairSync } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../collector/app.ts';
import { openTestDatabase } from '../collector/test-support/db.ts';
import { TEST_ADMIN_TOKEN, TEST_HASH_KEY } from '../collector/test-support/probe.ts';
import { CollectorClient } from '../probe/client.ts';
import { PROTOCOL_VERSION } from '../protocol/index.ts';
import { publicKeyToBase64 } from '../protocol/signing.ts';

describe('collector behind a reverse proxy with a path prefix', () => {
  it('registers, checks in and uploads through a proxy that strips /silentdrop', async () => {
    const database = await openTestDatabase({ name: 'pglite' });
    const app = await buildApp({
      db: database.db,
      config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
    });
    const upstream = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
    const proxy = createServer((req, res) => {
      const path = req.url ?? '';
      if (!path.startsWith('/silentdrop/')) {
        res.writeHead(404).end();
        return;
      }
      const up = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: path.slice('/silentdrop'.length),
          headers: { ...req.headers, host: upstream.host },
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const token = (
        await app.inject({
          method: 'POST',
          url: '/admin/v1/enrollment-tokens',
          headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
          payload: {},
        })
      ).json().token as string;
      const keys = generateKeyPairSync('ed25519');
      const client = new CollectorClient({
        baseUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/silentdrop`,
      });
      const { probe_id } = await client.register({
        protocol: PROTOCOL_VERSION,
        enrollment_token: token,
        public_key: publicKeyToBase64(keys.publicKey),
        country: 'US',
        asn: 64500,
        software_version: 'test',
      });
      client.setIdentity({ probeId: probe_id, privateKey: keys.privateKey });
      const answer = await client.checkin({
        protocol: PROTOCOL_VERSION,
        t0: Date.now(),
        software_version: 'test',
        accounts: [],
        conversations: [],
        outbox_backlog: 0,
        dead_letters: 0,
      });
      expect(answer.canaries).toEqual([]);
      // Signed and verified (a bad signature would be 401); the malformed event is refused alone.
      const [result] = await client.uploadEvents([{ type: 'sent' }]);
      expect(result?.status).toBe('refused');
    } finally {
      await new Promise<void>((r) => proxy.close(() => r()));
      await app.close();
      await database.cleanup();
    }
  });
});
