/**
 * A small client for the collector's admin API (/admin/v1, bearer admin token), used by
 * the local network to enrol probes, upload term lists and create campaigns over HTTP,
 * as a researcher's script would.
 */
import type {
  AccountsResponse,
  Campaign,
  CampaignsResponse,
  CreateCampaignRequest,
  EnrollmentTokenResponse,
  ProbesResponse,
  TermListSummary,
  TermListsResponse,
  UploadTermListResponse,
} from '../../protocol/index.ts';

export class AdminApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'AdminApiError';
  }
}

export class AdminClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  private async call<T>(method: string, path: string, body?: unknown, contentType = 'application/json') {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['content-type'] = contentType;
    const res = await fetch(`${this.baseUrl}/admin/v1${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    const data: unknown = text ? JSON.parse(text) : undefined;
    if (!res.ok) {
      const e = (data ?? {}) as { code?: string; message?: string };
      throw new AdminApiError(
        res.status,
        e.code,
        `admin ${method} ${path}: ${res.status} ${e.message ?? text}`,
      );
    }
    return data as T;
  }

  enrollmentToken(label: string): Promise<EnrollmentTokenResponse> {
    return this.call('POST', '/enrollment-tokens', { uses: 1, expires_in_hours: 24, label });
  }

  /** Uploads a term list (one term set a line, `a + b`); an existing list of that name is reused. */
  async termList(name: string, termSets: readonly (readonly string[])[]): Promise<TermListSummary> {
    const body = `${termSets.map((s) => s.join(' + ')).join('\n')}\n`;
    try {
      const r = await this.call<UploadTermListResponse>(
        'POST',
        `/term-lists?name=${encodeURIComponent(name)}`,
        body,
        'text/plain; charset=utf-8',
      );
      return r.term_list;
    } catch (err) {
      if (!(err instanceof AdminApiError && err.status === 409)) throw err;
      const found = (await this.termLists()).find((t) => t.name === name);
      if (!found) throw err;
      return found;
    }
  }

  async termLists(): Promise<TermListSummary[]> {
    return (await this.call<TermListsResponse>('GET', '/term-lists')).term_lists;
  }

  createCampaign(request: CreateCampaignRequest): Promise<Campaign> {
    return this.call('POST', '/campaigns', request);
  }

  async campaigns(): Promise<Campaign[]> {
    return (await this.call<CampaignsResponse>('GET', '/campaigns')).campaigns;
  }

  async probes(): Promise<ProbesResponse['probes']> {
    return (await this.call<ProbesResponse>('GET', '/probes')).probes;
  }

  async accounts(): Promise<AccountsResponse['accounts']> {
    return (await this.call<AccountsResponse>('GET', '/accounts')).accounts;
  }
}
