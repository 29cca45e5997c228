/**
 * HTTP client to the collector. Every request after registration is signed as
 * protocol/signing.ts describes (x-sd-probe, x-sd-timestamp, x-sd-request-id,
 * x-sd-signature over the exact body bytes). Errors are classified into
 * CollectorError kinds so callers can decide to retry, split or give up.
 */
import { type KeyObject, randomUUID } from 'node:crypto';
import {
  type CheckinRequest,
  type CheckinResponse,
  type EventResult,
  type EventsResponse,
  PROTOCOL_VERSION,
  type RegisterRequest,
  type RegisterResponse,
} from '../protocol/index.ts';
import { canonicalSigningString, SIGNATURE_HEADERS, signString } from '../protocol/signing.ts';

export type CollectorErrorKind =
  /** No answer: DNS, refused, reset. */
  | 'network'
  /** No answer in time. */
  | 'timeout'
  /** The collector answered with a non-2xx status. */
  | 'http'
  /** A 2xx answer we could not parse. */
  | 'bad_response';

export class CollectorError extends Error {
  readonly code = 'SD_ERR_COLLECTOR';
  constructor(
    readonly kind: CollectorErrorKind,
    message: string,
    readonly status?: number,
    /** The collector's stable error code (SD_ERR_*), when it sent one. */
    readonly collectorCode?: string,
    options?: { cause?: unknown; serverDate?: number },
  ) {
    super(message, options);
    this.name = 'CollectorError';
    if (options?.serverDate !== undefined) this.serverDate = options.serverDate;
  }

  /** The collector's clock from its HTTP Date header (1 s resolution), when it answered. */
  readonly serverDate?: number;

  /** Worth retrying later unchanged: network trouble, timeouts, 5xx, 429, 401/403 (clock, key rollout). */
  get retryable(): boolean {
    if (this.kind !== 'http') return true;
    const s = this.status ?? 0;
    return s >= 500 || s === 429 || s === 408 || s === 401 || s === 403;
  }

  /** The request itself was refused (malformed or too large); sending it again will not help. */
  get refused(): boolean {
    return this.kind === 'http' && (this.status === 400 || this.status === 413 || this.status === 422);
  }
}

export interface SigningIdentity {
  probeId: string;
  privateKey: KeyObject;
}

export interface CollectorClientOptions {
  baseUrl: string;
  /**
   * Further collector addresses, tried in order after baseUrl when an address gives no
   * answer (network error, timeout, 5xx). The one that answered is tried first next time.
   */
  fallbackUrls?: string[];
  /** Corrected clock for x-sd-timestamp (probe clock + offset estimate). */
  now?: () => number;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export class CollectorClient {
  private identity?: SigningIdentity;
  private readonly bases: URL[];
  /** Index into bases of the address that answered last. */
  private current = 0;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(opts: CollectorClientOptions) {
    this.bases = [opts.baseUrl, ...(opts.fallbackUrls ?? [])]
      .filter((u, i, all) => all.indexOf(u) === i)
      .map((u) => new URL(u.endsWith('/') ? u : `${u}/`));
    this.now = opts.now ?? Date.now;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.fetchImpl = opts.fetch ?? fetch;
  }

  setIdentity(identity: SigningIdentity): void {
    this.identity = identity;
  }

  register(req: RegisterRequest): Promise<RegisterResponse> {
    return this.request<RegisterResponse>('POST', '/probe/v1/register', req, false);
  }

  checkin(req: CheckinRequest): Promise<CheckinResponse> {
    return this.request<CheckinResponse>('POST', '/probe/v1/checkin', req, true);
  }

  async uploadEvents(events: unknown[]): Promise<EventResult[]> {
    const res = await this.request<EventsResponse>(
      'POST',
      '/probe/v1/events',
      { protocol: PROTOCOL_VERSION, events },
      true,
    );
    if (!res || !Array.isArray(res.results)) {
      throw new CollectorError('bad_response', 'events response has no results array');
    }
    return res.results;
  }

  /** The collector address that answered last (or the first one). */
  get baseUrl(): string {
    return this.bases[this.current]!.toString().replace(/\/$/, '');
  }

  /**
   * Sends to the address that answered last, then to the others in order while an address
   * gives no answer (network, timeout, 5xx). An answer that is about the request (4xx, a
   * bad body) is final: another address of the same collector would say the same.
   */
  private async request<T>(method: string, path: string, payload: unknown, signed: boolean): Promise<T> {
    let last: unknown;
    for (let n = 0; n < this.bases.length; n++) {
      const i = (this.current + n) % this.bases.length;
      try {
        const out = await this.requestAt<T>(this.bases[i]!, method, path, payload, signed);
        this.current = i;
        return out;
      } catch (err) {
        last = err;
        const e = err as CollectorError;
        const noAnswer =
          err instanceof CollectorError &&
          (e.kind === 'network' || e.kind === 'timeout' || (e.kind === 'http' && (e.status ?? 0) >= 500));
        if (!noAnswer) throw err;
      }
    }
    throw last;
  }

  private async requestAt<T>(
    base: URL,
    method: string,
    path: string,
    payload: unknown,
    signed: boolean,
  ): Promise<T> {
    const body = JSON.stringify(payload);
    const url = new URL(path.replace(/^\//, ''), base);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (signed) {
      if (!this.identity) throw new Error('collector client has no identity yet (probe not registered)');
      const timestamp = String(Math.round(this.now()));
      const requestId = randomUUID();
      // The API path, not the URL's: a reverse proxy that serves the collector under a
      // prefix (https://host/silentdrop/probe/v1/…) and strips it keeps the signature valid.
      const signing = canonicalSigningString({
        method,
        path,
        probeId: this.identity.probeId,
        timestamp,
        requestId,
        body,
      });
      headers[SIGNATURE_HEADERS.probe] = this.identity.probeId;
      headers[SIGNATURE_HEADERS.timestamp] = timestamp;
      headers[SIGNATURE_HEADERS.requestId] = requestId;
      headers[SIGNATURE_HEADERS.signature] = signString(this.identity.privateKey, signing);
    }
    let res: Response;
    try {
      res = await this.fetchImpl(url, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'TimeoutError' || name === 'AbortError') {
        throw new CollectorError('timeout', `${method} ${url.pathname}: no answer in ${this.timeoutMs} ms`);
      }
      throw new CollectorError(
        'network',
        `${method} ${url.pathname}: ${describeNetworkError(err)}`,
        undefined,
        undefined,
        {
          cause: err,
        },
      );
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new CollectorError(
        'network',
        `${method} ${url.pathname}: connection dropped while reading`,
        res.status,
        undefined,
        {
          cause: err,
        },
      );
    }
    if (!res.ok) {
      let code: string | undefined;
      let message = text.slice(0, 300);
      try {
        const j = JSON.parse(text) as { code?: unknown; error?: unknown; message?: unknown };
        if (typeof j.code === 'string') code = j.code;
        else if (typeof j.error === 'string') code = j.error;
        if (typeof j.message === 'string') message = j.message;
      } catch {
        // not JSON: keep the start of the text
      }
      const date = Date.parse(res.headers.get('date') ?? '');
      throw new CollectorError(
        'http',
        `${method} ${url.pathname}: HTTP ${res.status} ${message}`.trim(),
        res.status,
        code,
        Number.isNaN(date) ? {} : { serverDate: date },
      );
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new CollectorError(
        'bad_response',
        `${method} ${url.pathname}: answer is not JSON`,
        res.status,
        undefined,
        {
          cause: err,
        },
      );
    }
  }
}

/** fetch's "fetch failed" hides the reason in `cause`; bring it out. */
export function describeNetworkError(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message ?? 'fetch failed'} (${cause})` : (e.message ?? String(err));
}
