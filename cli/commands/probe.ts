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
 *
 * `silentdrop probe init`: shows what a probe risks, asks for consent, the collector
 * URL(s), the enrolment token and the accounts, writes the config (0600) and the key.
 * `silentdrop probe service install`: writes a hardened systemd unit for the probe.
 * `silentdrop probe status`: the probe's state from its data folder, also while it runs.
 * See docs/probe-vps.md.
 */
import { existsSync, realpathSync } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { type Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { startProbe } from '../../probe/agent.ts';
import { accountStateDir, loadConfig, parseConfig } from '../../probe/config.ts';
import { ensureIdentityKey, identityPath } from '../../probe/identity.ts';
import {
  type InitAnswers,
  initConfigText,
  parseAccountSpec,
  readOperatorsDoc,
  risksText,
  systemdUnit,
} from '../../probe/setup.ts';
import { formatLocalStatus, readLocalStatus } from '../../probe/status.ts';
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

/** The package root (a checkout, or the installed package: dist/cli/commands → ../../..). */
function packageRoot(): string {
  const here = dirname(new URL(import.meta.url).pathname);
  for (const up of ['../../', '../../../']) {
    const r = resolve(here, up);
    if (existsSync(resolve(r, 'bin/silentdrop.js'))) return `${r}/`;
  }
  return resolve(here, '../../') + '/';
}

interface InitOptions {
  config: string;
  yes?: boolean;
  acceptRisks?: boolean;
  collectorUrl: string[];
  enrollmentToken?: string;
  dataDir?: string;
  country?: string;
  asn?: string;
  label?: string;
  account: string[];
  allowInsecureTransport?: boolean;
  force?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

async function init(opts: InitOptions): Promise<void> {
  const file = resolve(opts.config);
  if (existsSync(file) && !opts.force)
    throw new CliError(`${file} exists; use --force to replace it`, 'SD_ERR_PROBE_CONFIG');
  const risks = risksText(readOperatorsDoc(packageRoot()));
  let answers: InitAnswers;
  if (opts.yes) {
    if (!opts.acceptRisks) {
      throw new CliError(
        'refusing to write a probe config without consent: read docs/operators.md (what a probe ' +
          'does, the risks to you and to the accounts), then add --accept-risks',
        'SD_ERR_PROBE_CONSENT',
      );
    }
    const missing = [
      opts.collectorUrl.length === 0 && '--collector-url',
      !opts.enrollmentToken && '--enrollment-token',
      !opts.country && '--country',
      !opts.asn && '--asn',
    ].filter(Boolean);
    if (missing.length > 0) throw new CliError(`--yes needs ${missing.join(', ')}`, 'SD_ERR_PROBE_CONFIG');
    answers = {
      collectorUrls: opts.collectorUrl,
      enrollmentToken: opts.enrollmentToken!,
      dataDir: resolve(opts.dataDir ?? '/var/lib/silentdrop-probe'),
      country: opts.country!.toUpperCase(),
      asn: Number(opts.asn),
      ...(opts.label ? { label: opts.label } : {}),
      ...(opts.allowInsecureTransport ? { allowInsecureTransport: true } : {}),
      accounts: opts.account.map(specOrFail),
    };
  } else {
    answers = await askInteractively(risks, opts);
  }
  const text = initConfigText(answers);
  // Validated exactly as the probe will load it, before anything is written.
  try {
    parseConfig(text, { file, baseDir: dirname(file) });
  } catch (err) {
    throw new CliError((err as Error).message, 'SD_ERR_PROBE_CONFIG');
  }
  const fh = await open(file, opts.force ? 'w' : 'wx', 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  const key = await ensureIdentityKey(answers.dataDir, answers.collectorUrls[0]!);
  console.log(`wrote ${file} (mode 0600)`);
  console.log(
    `${key.created ? 'made' : 'kept'} the probe key in ${identityPath(answers.dataDir)} (public key ${key.publicKey})`,
  );
  console.log(
    `next: add each account's credentials (see probe.example.yaml), then \`silentdrop probe --config ${file}\` ` +
      `or \`silentdrop probe service install --config ${file}\``,
  );
}

function specOrFail(spec: string) {
  try {
    return parseAccountSpec(spec);
  } catch (err) {
    throw new CliError((err as Error).message, 'SD_ERR_PROBE_CONFIG');
  }
}

async function askInteractively(risks: string, opts: InitOptions): Promise<InitAnswers> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    console.log(`${risks}\n`);
    const consent = await rl.question('Have you read this, and do you accept these risks? Type "yes": ');
    if (consent.trim().toLowerCase() !== 'yes') {
      throw new CliError('no consent given; nothing was written', 'SD_ERR_PROBE_CONSENT');
    }
    const ask = async (q: string, def?: string): Promise<string> => {
      for (;;) {
        const a = (await rl.question(def ? `${q} [${def}]: ` : `${q}: `)).trim();
        if (a !== '') return a;
        if (def !== undefined) return def;
      }
    };
    const urls = (
      await ask(
        'Collector URL(s), several separated by spaces (tried in order)',
        opts.collectorUrl.join(' ') || undefined,
      )
    )
      .split(/\s+/)
      .filter(Boolean);
    const token = await ask('Enrolment token (from the collector admin)', opts.enrollmentToken);
    const country = (await ask('Country of this machine (ISO code, e.g. CN)', opts.country)).toUpperCase();
    const asn = Number(await ask('ASN of its network (a number)', opts.asn));
    const dataDir = resolve(await ask('Data folder', opts.dataDir ?? '/var/lib/silentdrop-probe'));
    const label = (await rl.question('Label (optional, nothing that names you): ')).trim();
    const accounts = opts.account.map(specOrFail);
    for (;;) {
      const a = (await rl.question('Account as platform/handle/region (empty to finish): ')).trim();
      if (a === '') break;
      try {
        accounts.push(parseAccountSpec(a));
      } catch (err) {
        console.log((err as Error).message);
      }
    }
    return {
      collectorUrls: urls,
      enrollmentToken: token,
      dataDir,
      country,
      asn,
      ...(label ? { label } : {}),
      ...(opts.allowInsecureTransport ? { allowInsecureTransport: true } : {}),
      accounts,
    };
  } finally {
    rl.close();
  }
}

async function serviceInstall(opts: {
  config: string;
  output: string;
  user?: string;
  dynamicUser?: boolean;
  node?: string;
}): Promise<void> {
  const configFile = resolve(opts.config);
  const config = await loadConfig(configFile);
  const root = packageRoot();
  let unit: string;
  try {
    unit = systemdUnit({
      node: realpathSync(opts.node ?? process.execPath),
      bin: realpathSync(resolve(root, 'bin/silentdrop.js')),
      config: configFile,
      dataDir: config.dataDir,
      ...(opts.dynamicUser ? {} : { user: opts.user ?? 'silentdrop' }),
    });
  } catch (err) {
    throw new CliError((err as Error).message, 'SD_ERR_PROBE_CONFIG');
  }
  if (opts.output === '-') {
    process.stdout.write(unit);
    return;
  }
  await writeFile(opts.output, unit, { mode: 0o644 });
  console.log(`wrote ${opts.output}`);
  if (!opts.dynamicUser)
    console.log(
      `create the user if needed: useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin ${opts.user ?? 'silentdrop'}`,
    );
  console.log('then: systemctl daemon-reload && systemctl enable --now silentdrop-probe');
}

async function status(opts: { config?: string; dataDir?: string; json?: boolean }): Promise<void> {
  let dataDir = opts.dataDir ? resolve(opts.dataDir) : undefined;
  if (!dataDir) {
    if (!opts.config) throw new CliError('give --config FILE or --data-dir DIR', 'SD_ERR_PROBE_CONFIG');
    dataDir = (await loadConfig(opts.config)).dataDir;
  }
  const s = await readLocalStatus(dataDir);
  if (opts.json) console.log(JSON.stringify(s, null, 2));
  else process.stdout.write(formatLocalStatus(s));
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

  probe
    .command('init')
    .description('set a probe up: show its risks, ask for consent, write the config (0600) and the key')
    .option('-c, --config <file>', 'where to write the config', 'probe.yaml')
    .option('-y, --yes', 'ask nothing; take everything from the options (for scripts)')
    .option('--accept-risks', 'with --yes: you read docs/operators.md and accept the risks')
    .option('--collector-url <url>', 'collector address (repeat for fallbacks, tried in order)', collect, [])
    .option('--enrollment-token <token>', 'one-time token from `silentdrop admin enroll`')
    .option('--data-dir <dir>', 'data folder (default /var/lib/silentdrop-probe)')
    .option('--country <code>', 'country of this machine (ISO code)')
    .option('--asn <n>', 'ASN of its network')
    .option('--label <text>', 'a label for the collector (nothing that names you)')
    .option('--account <platform/handle/region>', 'an account (repeat)', collect, [])
    .option('--allow-insecure-transport', 'allow a plain http:// collector that is not on this machine')
    .option('--force', 'replace an existing config file')
    .action(init);

  probe
    .command('service')
    .description('run the probe as a system service')
    .command('install')
    .description('write a hardened systemd unit that runs `silentdrop probe --config FILE`')
    .requiredOption('-c, --config <file>', 'probe config (YAML)')
    .option(
      '-o, --output <file>',
      'where to write the unit (- for stdout)',
      '/etc/systemd/system/silentdrop-probe.service',
    )
    .option('--user <name>', 'system user to run as (default silentdrop)')
    .option(
      '--dynamic-user',
      'run as a transient user (DynamicUser=yes; data_dir must be under /var/lib/silentdrop-probe)',
    )
    .option('--node <path>', 'node binary (default: the one running this command)')
    .action(serviceInstall);

  probe
    .command('status')
    .description(
      "the probe's identity, collector, last check-in, clock, outbox and accounts (also while it runs)",
    )
    .option('-c, --config <file>', 'probe config (YAML)')
    .option('--data-dir <dir>', 'the data folder, instead of --config')
    .option('--json', 'print JSON')
    .action(status);
}
