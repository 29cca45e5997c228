import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../protocol/index.ts';
import { canonicalSigningString, SIGNATURE_HEADERS, verifyString } from '../protocol/signing.ts';
import { CollectorClient, CollectorError } from './client.ts';

interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function server(answer: (s: Seen) => { status: number; body: unknown; delayMs?: number }) {
  const seen: Seen[] = [];
  const srv = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const s = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body: Buffer.concat(chunks),
    };
    seen.push(s);
    const a = answer(s);
    if (a.delayMs) await new Promise((r) => setTimeout(r, a.delayMs));
    res.writeHead(a.status, { 'content-type': 'application/json' });
    res.end(typeof a.body === 'string' ? a.body : JSON.stringify(a.body));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  close = () =>
    new Promise((r) => {
      srv.closeAllConnections();
      srv.close(() => r());
    });
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen };
}

describe('collector client', () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const probeId = '00000000-0000-4000-8000-0000000000aa';

  it('signs every request so that verifyString accepts it over the exact body', async () => {
    const { url, seen } = await server((s) =>
      s.path.endsWith('/events')
        ? { status: 200, body: { results: [{ index: 0, status: 'stored' }] } }
        : { status: 200, body: { t1: 1, t2: 2, canaries: [], next_checkin_at: new Date().toISOString() } },
    );
    const client = new CollectorClient({ baseUrl: `${url}/`, now: () => 1_780_000_000_000 });
    client.setIdentity({ probeId, privateKey });
    await client.checkin({
      protocol: PROTOCOL_VERSION,
      t0: 1,
      software_version: 'test',
      accounts: [],
      conversations: [],
      outbox_backlog: 0,
      dead_letters: 0,
    });
    await client.uploadEvents([{ event_id: 'x', text: '六四 天安门 ✓' }]);
    expect(seen).toHaveLength(2);
    const ids = new Set<string>();
    for (const s of seen) {
      const h = (n: string) => String(s.headers[n]);
      expect(h(SIGNATURE_HEADERS.probe)).toBe(probeId);
      expect(h(SIGNATURE_HEADERS.timestamp)).toBe('1780000000000');
      ids.add(h(SIGNATURE_HEADERS.requestId));
      const signing = canonicalSigningString({
        method: s.method,
        path: s.path,
        probeId,
        timestamp: h(SIGNATURE_HEADERS.timestamp),
        requestId: h(SIGNATURE_HEADERS.requestId),
        body: s.body,
      });
      expect(verifyString(publicKey, signing, h(SIGNATURE_HEADERS.signature))).toBe(true);
      // One changed body byte breaks it.
      const tampered = canonicalSigningString({
        method: s.method,
        path: s.path,
        probeId,
        timestamp: h(SIGNATURE_HEADERS.timestamp),
        requestId: h(SIGNATURE_HEADERS.requestId),
        body: Buffer.concat([s.body, Buffer.from(' ')]),
      });
      expect(verifyString(publicKey, tampered, h(SIGNATURE_HEADERS.signature))).toBe(false);
    }
    expect(ids.size).toBe(2); // a fresh request id each time
  });

  it('does not sign registration and sends no IP-like field', async () => {
    const { url, seen } = await server(() => ({ status: 201, body: { probe_id: probeId } }));
    const client = new CollectorClient({ baseUrl: url });
    const res = await client.register({
      protocol: PROTOCOL_VERSION,
      enrollment_token: 'x'.repeat(20),
      public_key: `${'A'.repeat(43)}=`,
      country: 'US',
      asn: 1,
      software_version: 't',
    });
    expect(res.probe_id).toBe(probeId);
    expect(seen[0]!.headers[SIGNATURE_HEADERS.signature]).toBeUndefined();
    expect(Object.keys(JSON.parse(seen[0]!.body.toString()) as object).sort()).toEqual(
      ['asn', 'country', 'enrollment_token', 'protocol', 'public_key', 'software_version'].sort(),
    );
  });

  it('classifies HTTP errors, timeouts and network failures', async () => {
    const { url } = await server((s) =>
      s.path.includes('slow')
        ? { status: 200, body: {}, delayMs: 500 }
        : s.body.length > 50
          ? { status: 413, body: { code: 'SD_ERR_TOO_LARGE', message: 'body too large' } }
          : { status: 503, body: { code: 'SD_ERR_UNAVAILABLE', message: 'later' } },
    );
    const client = new CollectorClient({ baseUrl: url, timeoutMs: 100 });
    client.setIdentity({ probeId, privateKey });
    const err1 = await client.uploadEvents([{}]).catch((e: unknown) => e);
    expect(err1).toBeInstanceOf(CollectorError);
    expect((err1 as CollectorError).status).toBe(503);
    expect((err1 as CollectorError).collectorCode).toBe('SD_ERR_UNAVAILABLE');
    expect((err1 as CollectorError).retryable).toBe(true);
    const err2 = (await client
      .uploadEvents([{ text: 'x'.repeat(100) }])
      .catch((e: unknown) => e)) as CollectorError;
    expect(err2.refused).toBe(true);
    expect(err2.retryable).toBe(false);
    const slow = new CollectorClient({ baseUrl: `${url}/slow`, timeoutMs: 100 });
    const err3 = (await slow.register({} as never).catch((e: unknown) => e)) as CollectorError;
    expect(err3.kind).toBe('timeout');
    const gone = createServer();
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
    const port = (gone.address() as AddressInfo).port;
    await new Promise((r) => gone.close(r));
    const dead = new CollectorClient({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 2000 });
    const err4 = (await dead.register({} as never).catch((e: unknown) => e)) as CollectorError;
    expect(err4.kind).toBe('network');
    expect(err4.message).toContain('ECONNREFUSED');
  });
});
