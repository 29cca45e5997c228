/**
 * `silentdrop probe --config FILE`: runs a probe until SIGTERM/SIGINT, then shuts down
 * gracefully (outbox flushed as far as the collector allows; the rest stays on disk). A probe
 * that has no identity yet registers only when its config says `risks_accepted: true`
 * (docs/operators.md).
 *
 * `silentdrop probe login --config FILE ACCOUNT`: logs a browser-adapter account in on a
 * server with no screen. Shows the client's login form state or QR code in the terminal
 * (and as a PNG in the account's state folder), fills a form from the config's
 * credentials, waits until logged in, and stores the session where the probe's browser
 * adapter finds it. Stop the probe first: one session per account.
 */
import { existsSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { startProbe } from '../../probe/agent.ts';
import { accountStateDir, loadConfig } from '../../probe/config.ts';
import { identityPath } from '../../probe/identity.ts';
import { CliError } from '../errors.ts';

interface LoginOptions {
  config: string;
  stateDir?: string;
  timeout: number;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new InvalidArgumentError('must be a whole number of seconds >= 1');
  return n;
}

async function runProbe(opts: { config?: string }): Promise<void> {
  if (!opts.config)
    throw new CliError('missing --config FILE (see probe.example.yaml)', 'SD_ERR_PROBE_CONFIG');
  const config = await loadConfig(opts.config);
  if (!config.risksAccepted && !existsSync(identityPath(config.dataDir))) {
    throw new CliError(
      `this probe is not registered yet, and ${opts.config} does not say risks_accepted: true. ` +
        'A probe sends censored terms from its accounts and reports its country and ASN: read ' +
        'docs/operators.md (what it does, the risks to you and to the accounts), then set ' +
        '`risks_accepted: true` in the config to go on',
      'SD_ERR_PROBE_CONSENT',
    );
  }
  let probe: Awaited<ReturnType<typeof startProbe>>;
  try {
    probe = await startProbe(config, { handleSignals: true });
  } catch (err) {
    const e = err as { code?: unknown; message?: string };
    if (typeof e.code === 'string' && e.code.startsWith('SD_ERR_')) throw err;
    throw new CliError(`probe could not start: ${e.message ?? String(err)}`, 'SD_ERR_PROBE_START');
  }
  await probe.stopped;
}

async function login(accountArg: string, opts: LoginOptions): Promise<void> {
  const config = await loadConfig(opts.config);
  const [platform, handle] = accountArg.includes('/') ? accountArg.split('/', 2) : [undefined, accountArg];
  const matches = config.accounts.filter(
    (a) => a.handle === handle && (platform === undefined || a.platform === platform),
  );
  const account = matches[0];
  if (!account) throw new CliError(`no account "${accountArg}" in ${opts.config}`, 'SD_ERR_PROBE_LOGIN');
  if (matches.length > 1) {
    throw new CliError(`"${handle}" is on several platforms; say platform/handle`, 'SD_ERR_PROBE_LOGIN');
  }
  if (typeof account.settings.recipe !== 'string') {
    throw new CliError(
      `${account.platform}/${account.handle} is not a browser account (no settings.recipe)`,
      'SD_ERR_PROBE_LOGIN',
    );
  }
  // Loaded here so that puppeteer is only imported when a browser login is asked for.
  const { loginInteractive } = await import('../../probe/adapters/browser/index.ts');
  const stateDir = opts.stateDir ?? accountStateDir(config.dataDir, account.platform, account.handle);
  const logger = pino({ level: process.env.SILENTDROP_LOG_LEVEL ?? 'warn' }, pino.destination(2));
  console.log(`logging in ${account.platform}/${account.handle} (state: ${stateDir})`);
  await loginInteractive(account, { stateDir, out: process.stdout, logger, timeoutMs: opts.timeout * 1000 });
}

export function register(program: Command): void {
  const probe = program
    .command('probe')
    .description('run a probe: check in with the collector, send canaries, observe accounts')
    .option('-c, --config <file>', 'probe config (YAML); see probe.example.yaml')
    .action(runProbe);

  probe
    .command('login')
    .description('log a browser account in from a terminal (QR code or login form) and store its session')
    .requiredOption('-c, --config <file>', 'probe config (YAML)')
    .option('--state-dir <dir>', 'account state folder (default: <data_dir>/accounts/<platform>/<handle>)')
    .option('--timeout <seconds>', 'how long to wait for the login', seconds, 300)
    .argument('<account>', 'the account handle (or platform/handle) from the config')
    .action(login);
}
