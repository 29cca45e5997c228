/**
 * The testbed platform's HTTP API (testbed/API.md) as this adapter uses it: login with
 * handle/password, bearer token on every call, one re-login when a token has expired.
 * Every failure becomes an AdapterError with a protocol FailureCode.
 */
import { classifyFailure, classifyHttpStatus } from '../../failures.ts';
import { AdapterError } from '../types.ts';

export interface TestbedApiOptions {
  baseUrl: string;
  handle: string;
  password: string;
  timeoutMs: number;
  fetch?: typeof fetch;
}

export interface ApiAnswer {
  status: number;
  headers: Headers;
  /** Parsed JSON body, or undefined when empty / not JSON. */
  body: unknown;
}

export class TestbedApi {
  private token?: string;
  private readonly base: URL;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly opts: TestbedApiOptions) {
    this.base = new URL(opts.baseUrl.endsWith('/') ? opts.baseUrl : `${opts.baseUrl}/`);
    this.fetchImpl = opts.fetch ?? fetch;
  }

  url(path: string): URL {
    return new URL(path.replace(/^\//, ''), this.base);
  }

  get bearer(): string | undefined {
    return this.token;
  }

  async login(): Promise<void> {
    const res = await this.raw(
      'POST',
      '/api/login',
      { handle: this.opts.handle, password: this.opts.password },
      false,
    );
    if (res.status === 200) {
      const token = (res.body as { token?: unknown } | undefined)?.token;
      if (typeof token !== 'string')
        throw new AdapterError('adapter_error', 'testbed login answer has no token');
      this.token = token;
      return;
    }
    if (res.status === 401 || res.status === 403) {
      throw new AdapterError(
        'login_required',
        `testbed refused login for ${this.opts.handle} (${errorCode(res)})`,
      );
    }
    throw httpFailure('login', res);
  }

  /** Creates the account (unauthenticated sign-up); an existing handle is fine. */
  async signUp(region: string): Promise<void> {
    const res = await this.raw(
      'POST',
      '/api/accounts',
      { handle: this.opts.handle, password: this.opts.password, region },
      false,
    );
    if (res.status !== 201 && res.status !== 409) throw httpFailure('sign-up', res);
  }

  /** An authenticated call; on 401 logs in again once and repeats it. */
  async call(method: string, path: string, body?: unknown): Promise<ApiAnswer> {
    if (!this.token) await this.login();
    let res = await this.raw(method, path, body, true);
    if (res.status === 401) {
      await this.login();
      res = await this.raw(method, path, body, true);
      if (res.status === 401)
        throw new AdapterError('login_required', `testbed says login required for ${path}`);
    }
    return res;
  }

  private async raw(method: string, path: string, body: unknown, auth: boolean): Promise<ApiAnswer> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (auth && this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await this.fetchImpl(this.url(path), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
    } catch (err) {
      const code = classifyFailure(err);
      throw new AdapterError(
        code === 'send_timeout' || code === 'connection_lost' ? code : 'connection_lost',
        `${method} ${path}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    let text = '';
    try {
      text = await res.text();
    } catch (err) {
      throw new AdapterError('connection_lost', `${method} ${path}: connection dropped while reading`, {
        cause: err,
      });
    }
    let parsed: unknown;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    return { status: res.status, headers: res.headers, body: parsed };
  }
}

export function errorCode(res: ApiAnswer): string {
  const b = res.body as { error?: unknown } | undefined;
  return typeof b?.error === 'string' ? b.error : `HTTP ${res.status}`;
}

export function errorMessage(res: ApiAnswer): string | undefined {
  const b = res.body as { message?: unknown } | undefined;
  return typeof b?.message === 'string' ? b.message : undefined;
}

/** Retry-After (seconds or HTTP date) → ms. */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const v = headers.get('retry-after');
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** A non-2xx answer that is not handled specially → AdapterError. */
export function httpFailure(what: string, res: ApiAnswer): AdapterError {
  const code = errorCode(res);
  if (res.status === 429) {
    const wait = retryAfterMs(res.headers);
    return new AdapterError('rate_limited', `${what}: testbed rate limit (${code})`, {
      ...(wait !== undefined ? { retryAfterMs: wait } : {}),
    });
  }
  if (/ban|suspend/i.test(code)) return new AdapterError('account_banned', `${what}: ${code}`);
  return new AdapterError(
    classifyHttpStatus(res.status),
    `${what}: ${code} ${errorMessage(res) ?? ''}`.trim(),
  );
}
