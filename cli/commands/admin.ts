/**
 * `silentdrop admin <verb>`: the admin API over HTTP. The collector's URL comes from
 * --url / SILENTDROP_URL (default http://127.0.0.1:8080); the token from --token /
 * SILENTDROP_ADMIN_TOKEN, or the `admin-token` file in the data folder.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import type {
  AccountsResponse,
  Campaign,
  CampaignStateResponse,
  CampaignsResponse,
  ConversationDisagreementsResponse,
  CreateCampaignRequest,
  CreateWebhookResponse,
  EnrollmentTokenResponse,
  ProbesResponse,
  RetentionReport,
  RevokeProbeResponse,
  RotateAdminTokenResponse,
  TermListsResponse,
  UploadTermListResponse,
  WebhooksResponse,
} from '../../protocol/index.ts';
import { CliError } from '../errors.ts';

interface GlobalOptions {
  url?: string;
  token?: string;
  data?: string;
  json?: boolean;
}

function connection(cmd: Command): { url: string; token: string; json: boolean } {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const url = (g.url ?? process.env.SILENTDROP_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  let token = g.token ?? process.env.SILENTDROP_ADMIN_TOKEN;
  if (!token) {
    const file = join(resolve(g.data ?? process.env.SILENTDROP_DATA ?? './data'), 'admin-token');
    if (!existsSync(file)) {
      throw new CliError(
        `no admin token: pass --token, set SILENTDROP_ADMIN_TOKEN, or point --data at the collector's data folder (${file} not found)`,
        'SD_ERR_ADMIN_TOKEN',
      );
    }
    token = readFileSync(file, 'utf8').trim();
  }
  return { url, token, json: g.json ?? false };
}

async function call<T>(
  cmd: Command,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: { json: unknown } | { text: string },
): Promise<{ data: T; json: boolean }> {
  const { url, token, json } = connection(cmd);
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  let payload: string | undefined;
  if (body && 'json' in body) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body.json);
  } else if (body) {
    headers['content-type'] = 'text/plain; charset=utf-8';
    payload = body.text;
  }
  let res: Response;
  try {
    res = await fetch(`${url}${path}`, { method, headers, body: payload });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    throw new CliError(`cannot reach the collector at ${url}: ${cause}`, 'SD_ERR_CONNECT');
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const e = parsed as { code?: string; message?: string } | undefined;
    throw new CliError(e?.message ?? `HTTP ${res.status}`, e?.code ?? `SD_ERR_HTTP_${res.status}`);
  }
  return { data: parsed as T, json };
}

function table(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '(none)';
  const keys = Object.keys(rows[0]!);
  const cell = (v: unknown) =>
    v === null || v === undefined ? '-' : Array.isArray(v) ? v.join(',') : String(v);
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => cell(r[k]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(keys), ...rows.map((r) => line(keys.map((k) => cell(r[k]))))].join('\n');
}

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number >= 1');
  return n;
};
const collect = (v: string, prev: string[] = []) => [...prev, v];

function campaignRow(c: Campaign) {
  return {
    id: c.id,
    name: c.name,
    mode: c.mode,
    cadence: c.cadence,
    deadline_s: c.deadline_seconds,
    rounds: c.rounds,
    canaries: c.canaries,
    active: c.active,
    // term sets the latest round could not plan (details with --json)
    skipped: c.skipped_term_sets.length,
  };
}

/** The connection options, accepted before the verb (`admin --url U probes`) and after it. */
function connectionOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'collector URL (env SILENTDROP_URL, default http://127.0.0.1:8080)')
    .option('--token <token>', 'admin token (env SILENTDROP_ADMIN_TOKEN, or <data>/admin-token)')
    .option('--data <dir>', "the collector's data folder, to read its admin token")
    .option('--json', 'print the raw JSON answer');
}

/** Every verb (a command without subcommands) under `cmd`. */
function verbs(cmd: Command): Command[] {
  return cmd.commands.length === 0 ? [cmd] : cmd.commands.flatMap(verbs);
}

export function register(program: Command): void {
  const admin = connectionOptions(
    program.command('admin').description('administer a running collector over its admin API'),
  );
  registerVerbs(admin);
  // The CLI gives options after a subcommand to that subcommand: each verb takes them too.
  for (const verb of verbs(admin)) if (verb !== admin) connectionOptions(verb);
}

function registerVerbs(admin: Command): void {
  admin
    .command('enroll')
    .description('create an enrollment token for new probes (shown once)')
    .option('--uses <n>', 'how many probes may register with it', positiveInt, 1)
    .option('--expires-hours <h>', 'lifetime in hours', positiveInt, 168)
    .option('--label <text>', 'a note for yourself')
    .action(async (opts: { uses: number; expiresHours: number; label?: string }, cmd: Command) => {
      const { data, json } = await call<EnrollmentTokenResponse>(cmd, 'POST', '/admin/v1/enrollment-tokens', {
        json: {
          uses: opts.uses,
          expires_in_hours: opts.expiresHours,
          ...(opts.label ? { label: opts.label } : {}),
        },
      });
      if (json) return console.log(JSON.stringify(data, null, 2));
      console.log(data.token);
      console.error(`valid for ${data.uses} registration(s) until ${data.expires_at}`);
    });

  const terms = admin.command('terms').description('term lists');
  terms
    .command('upload')
    .description('upload a term file: one term set a line, terms joined by " + "')
    .argument('<file>', 'UTF-8 text file')
    .requiredOption('--name <name>', 'name of the new term list')
    .option('--source <text>', 'where the list comes from')
    .action(async (file: string, opts: { name: string; source?: string }, cmd: Command) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new CliError(`cannot read ${file}: ${(err as Error).message}`, 'SD_ERR_CLI');
      }
      const q = new URLSearchParams({ name: opts.name, ...(opts.source ? { source: opts.source } : {}) });
      const { data, json } = await call<UploadTermListResponse>(cmd, 'POST', `/admin/v1/term-lists?${q}`, {
        text,
      });
      if (json) return console.log(JSON.stringify(data, null, 2));
      console.log(`${data.term_list.id}  ${data.term_list.name}: ${data.term_list.term_sets} term sets`);
      for (const s of data.skipped) console.error(`${file}:${s.line}: skipped: ${s.message}`);
    });
  terms
    .command('list')
    .description('list term lists')
    .action(async (_opts: unknown, cmd: Command) => {
      const { data, json } = await call<TermListsResponse>(cmd, 'GET', '/admin/v1/term-lists');
      console.log(json ? JSON.stringify(data, null, 2) : table(data.term_lists));
    });

  const campaign = admin.command('campaign').description('campaigns');
  campaign
    .command('create')
    .description('schedule a campaign')
    .requiredOption('--name <name>', 'campaign name')
    .requiredOption('--term-list <id>', 'term list id (repeatable)', collect)
    .requiredOption('--cadence <cron>', 'five-field cron expression, UTC (e.g. "*/10 * * * *")')
    .requiredOption(
      '--deadline <seconds>',
      'seconds after sending until a receipt counts as delayed',
      positiveInt,
    )
    .option('--mode <mode>', 'screen (packed first) | isolate (each set alone) | monitor', 'screen')
    .option('--platform <name>', 'only conversations on this platform')
    .option('--kind <kind>', 'direct | group | any', 'any')
    .option('--conversation <ref>', 'only this conversation (repeatable)', collect)
    .option('--per-round <n>', 'term sets tested per round', positiveInt)
    .option('--seed <seed>', 'seed for the round plans')
    .option(
      '--min-independent-probes <n>',
      'probes (distinct ASNs) that must give the evidence before a verdict (default 1; 2+ in production)',
      positiveInt,
    )
    .action(
      async (
        opts: {
          name: string;
          termList: string[];
          cadence: string;
          deadline: number;
          mode: string;
          platform?: string;
          kind: string;
          conversation?: string[];
          perRound?: number;
          seed?: string;
          minIndependentProbes?: number;
        },
        cmd: Command,
      ) => {
        const body = {
          name: opts.name,
          mode: opts.mode as CreateCampaignRequest['mode'],
          term_list_ids: opts.termList,
          conversations: {
            ...(opts.platform ? { platform: opts.platform } : {}),
            kind: opts.kind as 'direct' | 'group' | 'any',
            ...(opts.conversation ? { refs: opts.conversation } : {}),
          },
          cadence: opts.cadence,
          deadline_seconds: opts.deadline,
          ...(opts.perRound ? { term_sets_per_round: opts.perRound } : {}),
          ...(opts.seed ? { seed: opts.seed } : {}),
          ...(opts.minIndependentProbes ? { min_independent_probes: opts.minIndependentProbes } : {}),
        } satisfies CreateCampaignRequest;
        const { data, json } = await call<Campaign>(cmd, 'POST', '/admin/v1/campaigns', { json: body });
        console.log(json ? JSON.stringify(data, null, 2) : table([campaignRow(data)]));
      },
    );
  for (const [verb, what] of [
    ['pause', 'stop planning rounds until resumed (canaries already handed out are still sent)'],
    ['resume', 'plan rounds again'],
    ['stop', 'end the campaign now (sets ends_at; cannot be resumed)'],
  ] as const) {
    campaign
      .command(verb)
      .description(what)
      .argument('<id>', 'campaign id')
      .action(async (id: string, _opts: unknown, cmd: Command) => {
        const { data, json } = await call<CampaignStateResponse>(
          cmd,
          'POST',
          `/admin/v1/campaigns/${encodeURIComponent(id)}/${verb}`,
        );
        console.log(json ? JSON.stringify(data, null, 2) : table([{ ...data }]));
      });
  }
  campaign
    .command('list')
    .description('list campaigns')
    .action(async (_opts: unknown, cmd: Command) => {
      const { data, json } = await call<CampaignsResponse>(cmd, 'GET', '/admin/v1/campaigns');
      console.log(json ? JSON.stringify(data, null, 2) : table(data.campaigns.map(campaignRow)));
    });

  admin
    .command('probes')
    .description('list registered probes')
    .action(async (_opts: unknown, cmd: Command) => {
      const { data, json } = await call<ProbesResponse>(cmd, 'GET', '/admin/v1/probes');
      if (json) return console.log(JSON.stringify(data, null, 2));
      console.log(
        table(
          data.probes.map((p) => ({
            id: p.id,
            country: p.country,
            asn: p.asn,
            version: p.software_version,
            label: p.label,
            health: p.health,
            last_checkin: p.last_checkin_at,
            age_s: p.last_checkin_age_s,
            offset_ms: p.clock_offset_ms === null ? null : Math.round(p.clock_offset_ms),
            backlog: p.outbox_backlog,
            dead: p.dead_letters,
            storage_full_since: p.storage_full_since,
          })),
        ),
      );
    });

  const probe = admin.command('probe').description('one probe');
  probe
    .command('revoke')
    .description(
      'revoke a probe: its key gets 401 from then on; --replacement prints a token whose probe takes over the accounts',
    )
    .argument('<id>', 'probe id (see `admin probes`)')
    .option('--replacement', 'make a single-use enrollment token for a replacement probe')
    .option('--expires-hours <h>', 'lifetime of the replacement token in hours', positiveInt, 168)
    .action(async (id: string, opts: { replacement?: boolean; expiresHours: number }, cmd: Command) => {
      const { data, json } = await call<RevokeProbeResponse>(
        cmd,
        'POST',
        `/admin/v1/probes/${encodeURIComponent(id)}/revoke`,
        { json: opts.replacement ? { replacement: true, expires_in_hours: opts.expiresHours } : {} },
      );
      if (json) return console.log(JSON.stringify(data, null, 2));
      console.error(`probe ${data.probe_id} revoked at ${data.revoked_at}`);
      if (data.replacement_token) {
        console.log(data.replacement_token);
        console.error(
          `enrol the replacement with this token (single use, until ${data.replacement_expires_at}); it takes over the accounts`,
        );
      }
    });

  const token = admin.command('token').description('the admin token');
  token
    .command('rotate')
    .description('make a new admin token (printed once) and retire the one used for this call')
    .option('--grace-minutes <n>', 'minutes the old token keeps working', (v) => Number(v), 0)
    .action(async (opts: { graceMinutes: number }, cmd: Command) => {
      if (!Number.isInteger(opts.graceMinutes) || opts.graceMinutes < 0) {
        throw new CliError('--grace-minutes must be a whole number >= 0', 'SD_ERR_CLI');
      }
      const { data, json } = await call<RotateAdminTokenResponse>(
        cmd,
        'POST',
        '/admin/v1/admin-token/rotate',
        {
          json: { grace_minutes: opts.graceMinutes },
        },
      );
      if (json) return console.log(JSON.stringify(data, null, 2));
      console.log(data.token);
      console.error(`the previous token stops working at ${data.previous_token_retires_at}`);
    });

  admin
    .command('prune')
    .description(
      'run the retention job once now: delete raw events past SILENTDROP_EVENT_RETENTION_DAYS and look-alikes past SILENTDROP_LOOKALIKE_RETENTION_DAYS',
    )
    .option('--dry-run', 'only count what it would delete (each count up to 100,000)')
    .action(async (opts: { dryRun?: boolean }, cmd: Command) => {
      const { data, json } = await call<RetentionReport>(cmd, 'POST', '/admin/v1/retention/run', {
        json: { dry_run: opts.dryRun === true },
      });
      if (json) return console.log(JSON.stringify(data, null, 2));
      const days = (n: number) => (n === 0 ? 'kept forever' : `${n} days`);
      const atLeast = data.capped ? 'at least ' : '';
      const verb = data.dry_run ? 'would delete' : 'deleted';
      console.log(
        `canary events (${days(data.event_retention_days)} after the deadline): ${verb} ${atLeast}` +
          `${data.canary_events} of ${atLeast}${data.canaries} canaries`,
      );
      if (!data.dry_run) {
        console.log(`late events of pruned canaries: deleted ${data.late_events}`);
        if (data.skipped > 0) console.log(`canaries left for a later run (being derived): ${data.skipped}`);
      }
      console.log(
        `look-alike receipts (${days(data.lookalike_retention_days)}): ${verb} ${atLeast}${data.lookalike_receipts}`,
      );
    });

  const webhook = admin.command('webhook').description('alert webhooks');
  webhook
    .command('add')
    .description('send alerts to a URL (signed with x-silentdrop-signature; the secret is printed once)')
    .argument('<url>', 'http(s) URL of the receiver')
    .option('--format <format>', 'json | slack | matrix', 'json')
    .option(
      '--kind <kind>',
      'finding_settled | finding_ended | probe_silent | dead_letters | probe_storage_full (repeatable; default all)',
      collect,
    )
    .option('--label <text>', 'a note for yourself')
    .action(async (url: string, opts: { format: string; kind?: string[]; label?: string }, cmd: Command) => {
      const { data, json } = await call<CreateWebhookResponse>(cmd, 'POST', '/admin/v1/webhooks', {
        json: {
          url,
          format: opts.format,
          ...(opts.kind ? { kinds: opts.kind } : {}),
          ...(opts.label ? { label: opts.label } : {}),
        },
      });
      if (json) return console.log(JSON.stringify(data, null, 2));
      console.log(data.secret);
      console.error(`webhook ${data.webhook.id} added; the line above is its signing secret (shown once)`);
    });
  webhook
    .command('list')
    .description('list webhooks and their deliveries')
    .action(async (_opts: unknown, cmd: Command) => {
      const { data, json } = await call<WebhooksResponse>(cmd, 'GET', '/admin/v1/webhooks');
      if (json) return console.log(JSON.stringify(data, null, 2));
      console.log(
        table(
          data.webhooks.map((w) => ({
            id: w.id,
            url: w.url,
            format: w.format,
            kinds: w.kinds.length ? w.kinds : ['all'],
            delivered: w.delivered,
            pending: w.pending,
            failed: w.failed,
            last_error: w.last_error,
          })),
        ),
      );
    });
  webhook
    .command('remove')
    .description('remove a webhook')
    .argument('<id>', 'webhook id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      await call(cmd, 'DELETE', `/admin/v1/webhooks/${encodeURIComponent(id)}`);
      console.error(`webhook ${id} removed`);
    });

  admin
    .command('accounts')
    .description('list test accounts reported by probes')
    .action(async (_opts: unknown, cmd: Command) => {
      const { data, json } = await call<AccountsResponse>(cmd, 'GET', '/admin/v1/accounts');
      if (json) return console.log(JSON.stringify(data, null, 2));
      console.log(
        table(
          data.accounts.map((a) => ({
            platform: a.platform,
            handle: a.handle,
            region: a.region,
            state: a.state,
            probe: a.probe_id,
            last_seen: a.last_seen_at,
          })),
        ),
      );
    });

  admin
    .command('disagreements')
    .description("conversations whose probes' views disagree on the kind or the members (decision 012)")
    .action(async (_opts: unknown, cmd: Command) => {
      const { data, json } = await call<ConversationDisagreementsResponse>(
        cmd,
        'GET',
        '/admin/v1/conversations/disagreements',
      );
      if (json) return console.log(JSON.stringify(data, null, 2));
      console.log(
        table(
          data.conversations.map((c) => ({
            platform: c.platform,
            ref: c.ref,
            kind: c.kind,
            kinds: c.kinds_differ ? [...new Set(c.views.map((v) => v.kind))].join('/') : '',
            members: c.members_differ
              .map((d) => `${d.probe_id.slice(0, 8)} ${d.issue} ${d.handle}`)
              .join('; '),
          })),
        ),
      );
    });
}
