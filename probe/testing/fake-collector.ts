/**
 * A collector stand-in for the probe's tests: a real HTTP server on port 0 that
 * implements the probe API's wire contract (register, check-in, events), verifies
 * every signed request with protocol/signing.ts, and ingests events idempotently by
 * event_id like the real one. Tests steer it: refuse some events, go down, hold or
 * hand out canaries, skew its clock.
 */
import { type KeyObject, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CanaryAssignment, CheckinRequest, EventResult } from '../../protocol/index.ts';
import {
  canonicalSigningString,
  publicKeyFromBase64,
  SIGNATURE_HEADERS,
  verifyString,
} from '../../protocol/signing.ts';

export interface StoredEvent {
  event_id: string;
  type: string;
  [k: string]: unknown;
}

export interface FakeCollectorOptions {
  /** Refuse (per event) when this returns a reason. */
  refuse?: (ev: StoredEvent) => string | undefined;
  /** Acknowledge without keeping (status `ignored`, per event) when this returns a reason. */
  ignore?: (ev: StoredEvent) => string | undefined;
  /** Answer 500 to a whole batch, storing none of it, when one of its events is "poisoned". */
  poisoned?: (ev: StoredEvent) => boolean;
  /** Collector clock minus real clock, ms. */
  skewMs?: number;
}

export interface FakeCollector {
  url: string;
  /** Events stored, in order, each once. */
  stored: StoredEvent[];
  /** How many times each event_id was answered `stored` (must never exceed 1). */
  storedCount: Map<string, number>;
  duplicates: number;
  checkins: CheckinRequest[];
  /** When each check-in arrived (real clock, epoch ms), beside `checkins`. */
  checkinTimes: number[];
  eventRequests: number;
  /** Events requests answered 500 because they held a poisoned event. */
  poisonedRequests: number;
  signatureFailures: number;
  /** Answer 503 to everything while true. */
  down: boolean;
  /** Canaries to hand out at the next check-in (then cleared), per probe id or '*'. */
  handOut: CanaryAssignment[];
  /** Rewrites the check-in answer before it is sent (to test a collector answering wrongly). */
  alterCheckin?: (answer: Record<string, unknown>) => unknown;
  /** Called when an events request arrived, after storing and before answering. */
  onEvents?: (n: number) => void | Promise<void>;
  probes: Map<string, KeyObject>;
  tokens: Set<string>;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

let clockOf = () => Date.now();

function send(res: ServerResponse, status: number, body: unknown): void {
  // Its HTTP Date header follows its own (possibly skewed) clock, as a real server's does.
  res.writeHead(status, { 'content-type': 'application/json', date: new Date(clockOf()).toUTCString() });
  res.end(JSON.stringify(body));
}

export async function startFakeCollector(opts: FakeCollectorOptions = {}): Promise<FakeCollector> {
  const now = () => Date.now() + (opts.skewMs ?? 0);
  clockOf = now;
  const fc: FakeCollector = {
    url: '',
    stored: [],
    storedCount: new Map(),
    duplicates: 0,
    checkins: [],
    checkinTimes: [],
    eventRequests: 0,
    poisonedRequests: 0,
    signatureFailures: 0,
    down: false,
    handOut: [],
    probes: new Map(),
    tokens: new Set(['test-enrollment-token-0001']),
    close: async () => undefined,
  };
  const seen = new Set<string>();

  const verify = (req: IncomingMessage, body: Buffer): string | undefined => {
    const h = (n: string) => {
      const v = req.headers[n];
      return typeof v === 'string' ? v : undefined;
    };
    const probeId = h(SIGNATURE_HEADERS.probe);
    const timestamp = h(SIGNATURE_HEADERS.timestamp);
    const requestId = h(SIGNATURE_HEADERS.requestId);
    const signature = h(SIGNATURE_HEADERS.signature);
    const key = probeId ? fc.probes.get(probeId) : undefined;
    if (!probeId || !timestamp || !requestId || !signature || !key) return undefined;
    const s = canonicalSigningString({
      method: req.method ?? '',
      path: (req.url ?? '').split('?')[0]!,
      probeId,
      timestamp,
      requestId,
      body,
    });
    if (!verifyString(key, s, signature)) return undefined;
    if (Math.abs(Number(timestamp) - now()) > 5 * 60_000) return undefined;
    return probeId;
  };

  const server = createServer((req, res) => {
    void (async () => {
      const t1 = now();
      const body = await readBody(req);
      if (fc.down) return send(res, 503, { code: 'SD_ERR_UNAVAILABLE', message: 'down for the test' });
      const path = (req.url ?? '').split('?')[0];
      if (req.method === 'POST' && path === '/probe/v1/register') {
        const r = JSON.parse(body.toString('utf8')) as { enrollment_token: string; public_key: string };
        if (!fc.tokens.delete(r.enrollment_token))
          return send(res, 403, { code: 'SD_ERR_TOKEN', message: 'bad token' });
        const id = randomUUID();
        fc.probes.set(id, publicKeyFromBase64(r.public_key));
        return send(res, 201, { probe_id: id });
      }
      const probeId = verify(req, body);
      if (!probeId) {
        fc.signatureFailures += 1;
        return send(res, 401, { code: 'SD_ERR_SIGNATURE', message: 'bad signature' });
      }
      if (req.method === 'POST' && path === '/probe/v1/checkin') {
        fc.checkins.push(JSON.parse(body.toString('utf8')) as CheckinRequest);
        fc.checkinTimes.push(Date.now());
        const canaries = fc.handOut.splice(0);
        const answer = {
          t1,
          t2: now(),
          canaries,
          next_checkin_at: new Date(now() + 60_000).toISOString(),
        };
        return send(res, 200, fc.alterCheckin ? fc.alterCheckin(answer) : answer);
      }
      if (req.method === 'POST' && path === '/probe/v1/events') {
        fc.eventRequests += 1;
        const { events } = JSON.parse(body.toString('utf8')) as { events: StoredEvent[] };
        if (opts.poisoned && events.some(opts.poisoned)) {
          fc.poisonedRequests += 1;
          return send(res, 500, { code: 'SD_ERR_INTERNAL', message: 'internal error' });
        }
        const results: EventResult[] = events.map((ev, index) => {
          const reason = opts.refuse?.(ev);
          if (reason) return { index, event_id: ev.event_id, status: 'refused', reason };
          const ignored = opts.ignore?.(ev);
          if (ignored) return { index, event_id: ev.event_id, status: 'ignored', reason: ignored };
          if (seen.has(ev.event_id)) {
            fc.duplicates += 1;
            return { index, event_id: ev.event_id, status: 'duplicate' };
          }
          seen.add(ev.event_id);
          fc.stored.push(ev);
          fc.storedCount.set(ev.event_id, (fc.storedCount.get(ev.event_id) ?? 0) + 1);
          return { index, event_id: ev.event_id, status: 'stored' };
        });
        await fc.onEvents?.(fc.eventRequests);
        return send(res, 200, { results });
      }
      send(res, 404, { code: 'SD_ERR_NOT_FOUND', message: 'no route' });
    })().catch((err: unknown) => send(res, 500, { message: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fc.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fc.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return fc;
}
