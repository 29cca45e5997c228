/**
 * `silentdrop probe-login --config FILE ACCOUNT`: log a browser-adapter account in on
 * a server with no screen. Shows the client's login form state or QR code in the
 * terminal (and as a PNG in the account's state folder), fills a form from the
 * config's credentials, waits until logged in, and stores the session where the
 * probe's browser adapter finds it. Stop the probe first: one session per account.
 *
 * A separate top-level command because `probe` (cli/commands/probe.ts) belongs to the
 * probe agent; it may be folded in as `probe login`.
 */
import { join } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { loginInteractive } from '../../probe/adapters/browser/index.ts';
import { loadConfig } from '../../probe/config.ts';
import { CliError } from '../errors.ts';

interface Options {
  config: string;
  stateDir?: string;
  timeout: number;
}

/**
 * Where an account keeps adapter state under the probe's data folder. The probe agent
 * must hand adapters the same folder (AdapterContext.stateDir).
 */
export function accountStateDir(dataDir: string, platform: string, handle: string): string {
  return join(dataDir, 'accounts', platform, encodeURIComponent(handle));
}

function seconds(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new InvalidArgumentError('must be a whole number of seconds >= 1');
  return n;
}

export function register(program: Command): void {
  program
    .command('probe-login')
    .description('log a browser account in from a terminal (QR code or login form) and store its session')
    .requiredOption('--config <file>', 'probe config (YAML)')
    .option('--state-dir <dir>', 'account state folder (default: <data_dir>/accounts/<platform>/<handle>)')
    .option('--timeout <seconds>', 'how long to wait for the login', seconds, 300)
    .argument('<account>', 'the account handle (or platform/handle) from the config')
    .action(async (accountArg: string, opts: Options) => {
      const config = await loadConfig(opts.config);
      const [platform, handle] = accountArg.includes('/')
        ? accountArg.split('/', 2)
        : [undefined, accountArg];
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
      const stateDir = opts.stateDir ?? accountStateDir(config.dataDir, account.platform, account.handle);
      const logger = pino({ level: process.env.SILENTDROP_LOG_LEVEL ?? 'warn' }, pino.destination(2));
      console.log(`logging in ${account.platform}/${account.handle} (state: ${stateDir})`);
      await loginInteractive(account, {
        stateDir,
        out: process.stdout,
        logger,
        timeoutMs: opts.timeout * 1000,
      });
    });
}
