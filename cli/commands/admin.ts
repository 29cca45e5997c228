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
  CampaignsResponse,
  CreateCampaignRequest,
  EnrollmentTokenResponse,
  ProbesResponse,
  TermListsResponse,
  UploadTermListResponse,
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
  method: 'GET' | 'POST',
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

export function register(program: Command): void {
  const admin = program
    .command('admin')
    .description('administer a running collector over its admin API')
    .option('--url <url>', 'collector URL (env SILENTDROP_URL, default http://127.0.0.1:8080)')
    .option('--token <token>', 'admin token (env SILENTDROP_ADMIN_TOKEN, or <data>/admin-token)')
    .option('--data <dir>', "the collector's data folder, to read its admin token")
    .option('--json', 'print the raw JSON answer');

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
        } satisfies CreateCampaignRequest;
        const { data, json } = await call<Campaign>(cmd, 'POST', '/admin/v1/campaigns', { json: body });
        console.log(json ? JSON.stringify(data, null, 2) : table([campaignRow(data)]));
      },
    );
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
            last_checkin: p.last_checkin_at,
            offset_ms: p.clock_offset_ms,
            backlog: p.outbox_backlog,
          })),
        ),
      );
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
}
