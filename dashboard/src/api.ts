/** The research API over fetch, typed by the shared protocol (types only: nothing of typebox is bundled). */
import type {
  AggregationResponse,
  FindingsResponse,
  LatencyResponse,
  OutcomesPage,
  ProbesHealthResponse,
  TermSetsResponse,
} from '../../protocol/research.ts';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function get<T>(path: string, params?: URLSearchParams): Promise<T> {
  const q = params?.toString();
  const res = await fetch(`/api/v1/${path}${q ? `?${q}` : ''}`, { headers: { accept: 'application/json' } });
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { message?: string } | null;
    throw new ApiError(res.status, body?.message ?? `${res.status} ${res.statusText}`);
  }
  return (await res.json()) as T;
}

export const api = {
  aggregation: (params: URLSearchParams) => get<AggregationResponse>('aggregation', params),
  termSets: (params: URLSearchParams) => get<TermSetsResponse>('term-sets', params),
  findings: (params: URLSearchParams) => get<FindingsResponse>('findings', params),
  latency: (params: URLSearchParams) => get<LatencyResponse>('latency', params),
  outcomes: (params: URLSearchParams) => get<OutcomesPage>('outcomes', params),
  probes: () => get<ProbesHealthResponse>('probes'),
};

export type {
  AggregationResponse,
  FindingsResponse,
  LatencyResponse,
  OutcomesPage,
  ProbesHealthResponse,
  TermSetsResponse,
};
