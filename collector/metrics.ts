/**
 * Prometheus metrics at /metrics (prom-client, one registry per app):
 * - sd_ingest_events_total{status}: events per ingest result (stored, duplicate, refused, ignored)
 * - sd_unknown_nonce_receipts_total: receipts of a nonce that is no canary of ours (look-alikes)
 * - sd_unknown_nonce_receipts_dropped_total: of those, the ones not kept (past the bound)
 * - sd_ingest_batches_total{status_code}: POST /probe/v1/events answers
 * - sd_http_request_duration_seconds{method,route,status_code}: by route template, never the raw URL
 * - sd_probe_outbox_backlog / sd_probe_dead_letters{probe,country}: as probes reported at check-in
 * - sd_probe_last_checkin_timestamp_seconds{probe,country}: a probe's last check-in (unix time;
 *   alert on `time() - sd_probe_last_checkin_timestamp_seconds > 900`)
 * - sd_findings{verdict}: findings in the database
 * - sd_events_pruned_total{kind}: raw events this process's retention job deleted: `canary`
 *   (events of canaries past the retention window, and late ones for pruned canaries) or
 *   `lookalike` (receipts of nonces that are no canary of ours); sd_canaries_pruned_total:
 *   canaries whose events it pruned; sd_retention_runs_total{result}: its runs (collector/retention.ts)
 * Process metrics (prom-client defaults) as well. Read at scrape time; no timers.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from './db/open.ts';
import { countFindingsByVerdict } from './db/research-findings.ts';
import { readProbeBacklogs } from './db/research-probes.ts';
import type { RetentionTotals } from './retention.ts';

const EVENTS_ROUTE = '/probe/v1/events';

/** Look-alike receipts of one events request, as ingest counted them (read by the onSend hook). */
const unknownNonceTallies = new WeakMap<FastifyRequest, Tally>();

interface Tally {
  kept: number;
  dropped: number;
  copiesDropped: number;
}

/** Called by the events route: this request's receipts of nonces that are no canary of ours. */
export function noteUnknownNonceReceipts(req: FastifyRequest, tally: Tally): void {
  unknownNonceTallies.set(req, tally);
}

export function createMetrics(db: Db, retention?: RetentionTotals) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const ingestEvents = new Counter({
    name: 'sd_ingest_events_total',
    help: 'Events received from probes, by ingest result',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  const ingestBatches = new Counter({
    name: 'sd_ingest_batches_total',
    help: 'Event batches (POST /probe/v1/events) by response status code',
    labelNames: ['status_code'] as const,
    registers: [registry],
  });
  const unknownNonceReceipts = new Counter({
    name: 'sd_unknown_nonce_receipts_total',
    help: 'Receipts of a nonce that is no canary of ours (look-alike words), kept or not',
    registers: [registry],
  });
  const unknownNonceDropped = new Counter({
    name: 'sd_unknown_nonce_receipts_dropped_total',
    help: 'Receipts of a nonce that is no canary of ours, acknowledged but not kept (past the bound)',
    registers: [registry],
  });
  const copiesDropped = new Counter({
    name: 'sd_canary_copies_dropped_total',
    help: 'Reports of a real canary past the bound per canary, account and type (copies of its text, repeated sends), acknowledged but not kept',
    registers: [registry],
  });
  const requestDuration = new Histogram({
    name: 'sd_http_request_duration_seconds',
    help: 'HTTP request latency by route template',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const backlogGauges = () => readProbeBacklogs(db);
  new Gauge({
    name: 'sd_probe_outbox_backlog',
    help: 'Events waiting in a probe outbox, as reported at its last check-in',
    labelNames: ['probe', 'country'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const p of await backlogGauges()) {
        if (p.outbox_backlog !== null) this.set({ probe: p.id, country: p.country }, p.outbox_backlog);
      }
    },
  });
  new Gauge({
    name: 'sd_probe_dead_letters',
    help: 'Dead-lettered events in a probe outbox, as reported at its last check-in',
    labelNames: ['probe', 'country'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const p of await backlogGauges()) {
        if (p.dead_letters !== null) this.set({ probe: p.id, country: p.country }, p.dead_letters);
      }
    },
  });
  new Gauge({
    name: 'sd_probe_last_checkin_timestamp_seconds',
    help: "Unix time of a probe's last check-in (revoked probes are left out)",
    labelNames: ['probe', 'country'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const p of await backlogGauges()) {
        if (p.last_checkin_s !== null) this.set({ probe: p.id, country: p.country }, p.last_checkin_s);
      }
    },
  });
  new Gauge({
    name: 'sd_findings',
    help: 'Findings by verdict',
    labelNames: ['verdict'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const f of await countFindingsByVerdict(db)) this.set({ verdict: f.verdict }, f.n);
    },
  });
  if (retention) {
    new Counter({
      name: 'sd_events_pruned_total',
      help: 'Raw events deleted by the retention job in this process, by kind (canary, lookalike)',
      labelNames: ['kind'] as const,
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ kind: 'canary' }, retention.canaryEvents);
        this.inc({ kind: 'lookalike' }, retention.lookAlikes);
      },
    });
    new Counter({
      name: 'sd_canaries_pruned_total',
      help: 'Canaries whose raw events the retention job in this process deleted',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(retention.canaries);
      },
    });
    new Counter({
      name: 'sd_retention_runs_total',
      help: 'Runs of the retention job in this process, by result (ok, failed)',
      labelNames: ['result'] as const,
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ result: 'ok' }, retention.runs);
        this.inc({ result: 'failed' }, retention.failures);
      },
    });
  }
  return {
    registry,
    ingestEvents,
    ingestBatches,
    unknownNonceReceipts,
    unknownNonceDropped,
    copiesDropped,
    requestDuration,
  };
}

/** Counts an events answer's per-event results. */
function countIngest(metrics: ReturnType<typeof createMetrics>, statusCode: number, payload: unknown): void {
  metrics.ingestBatches.inc({ status_code: String(statusCode) });
  if (statusCode !== 200 || typeof payload !== 'string') return;
  try {
    const body = JSON.parse(payload) as { results?: { status?: unknown }[] };
    for (const r of body.results ?? []) {
      if (typeof r.status === 'string') metrics.ingestEvents.inc({ status: r.status });
    }
  } catch {
    // not the events answer we expect: counted as a batch only
  }
}

/** Hooks into every route registered after it (register it early); serves GET /metrics. */
export const metricsPlugin = fp(
  async (app: FastifyInstance, opts: { db: Db; retentionTotals?: RetentionTotals | undefined }) => {
    const metrics = createMetrics(opts.db, opts.retentionTotals);
    app.addHook('onSend', async (req, reply, payload) => {
      if (req.method === 'POST' && req.routeOptions.url === EVENTS_ROUTE) {
        countIngest(metrics, reply.statusCode, payload);
        const tally = unknownNonceTallies.get(req);
        if (tally && reply.statusCode === 200) {
          metrics.unknownNonceReceipts.inc(tally.kept + tally.dropped);
          metrics.unknownNonceDropped.inc(tally.dropped);
          metrics.copiesDropped.inc(tally.copiesDropped);
        }
      }
      return payload;
    });
    app.addHook('onResponse', async (req, reply) => {
      metrics.requestDuration.observe(
        {
          method: req.method,
          route: req.routeOptions.url ?? 'unmatched',
          status_code: String(reply.statusCode),
        },
        reply.elapsedTime / 1000,
      );
    });
    app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
      const body = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(body);
    });
  },
  { name: 'silentdrop-metrics' },
);
