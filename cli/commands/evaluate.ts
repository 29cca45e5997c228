/**
 * `silentdrop evaluate --policy POLICY | --accounts FILE --terms TERMS [--minutes N]
 * [--out REPORT.json] [--data DIR]`: runs a whole network on this machine against the
 * testbed with POLICY (or an existing XMPP server with the accounts in FILE), tests the
 * term sets in TERMS until every verdict is settled or the time is up, and writes the
 * report (issue 4). Exit code 0 when every verdict settled, 3 when time ran out.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { MAX_TERM_FILE_BYTES } from '../../collector/planning/terms.ts';
import { CliError } from '../errors.ts';
import { runEvaluation } from '../evaluate/run.ts';

interface Options {
  policy?: string;
  accounts?: string;
  terms: string;
  minutes: number;
  out?: string;
  data?: string;
  mode: string;
  cadence: string;
  deadline: number;
  perRegion: number;
  seed?: string;
}

function positive(max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0 || n > max)
      throw new InvalidArgumentError(`must be a number in (0, ${max}]`);
    return n;
  };
}

export function register(program: Command): void {
  program
    .command('evaluate')
    .description(
      'test a term list on a local network (testbed policy or an XMPP accounts file) and write a report',
    )
    .option('--policy <file>', 'testbed policy (YAML or JSON)')
    .option(
      '--accounts <file>',
      'accounts file of an existing platform (platform: xmpp), instead of --policy',
    )
    .requiredOption('--terms <file>', 'term sets, one a line, terms separated by " + "')
    .option('--minutes <n>', 'stop after this many minutes even if verdicts are open', positive(24 * 60), 10)
    .option('--out <file>', 'write the report here (default: stdout)')
    .option('--data <dir>', 'keep the network data here (default: a temporary folder, removed)')
    .option(
      '--mode <mode>',
      'screen (term sets packed into messages, what is flagged judged alone) or isolate (every set alone)',
      'screen',
    )
    .option('--cadence <cron>', 'round cadence, cron with seconds', '*/4 * * * * *')
    .option('--deadline <s>', 'canary deadline in seconds', positive(3600), 5)
    .option('--per-region <n>', 'testbed accounts per region', positive(10), 3)
    .option('--seed <seed>', 'campaign seed (default: from the time)')
    .action(async (opts: Options) => {
      if (!opts.policy === !opts.accounts)
        throw new CliError('give either --policy or --accounts', 'SD_ERR_CLI');
      if (opts.mode !== 'isolate' && opts.mode !== 'screen') {
        throw new CliError(`--mode must be isolate or screen, got "${opts.mode}"`, 'SD_ERR_CLI');
      }
      const termsFile = resolve(opts.terms);
      if (statSync(termsFile).size > MAX_TERM_FILE_BYTES) {
        throw new CliError(
          `--terms: ${termsFile} is larger than ${MAX_TERM_FILE_BYTES / 1024 / 1024} MiB`,
          'SD_ERR_CLI',
        );
      }
      const terms = readFileSync(termsFile, 'utf8');
      const result = await runEvaluation({
        ...(opts.policy ? { policy: resolve(opts.policy) } : {}),
        ...(opts.accounts ? { accounts: resolve(opts.accounts) } : {}),
        terms,
        timeoutMs: opts.minutes * 60_000,
        ...(opts.data ? { dataDir: resolve(opts.data) } : {}),
        mode: opts.mode,
        cadence: opts.cadence,
        deadlineSeconds: opts.deadline,
        accountsPerRegion: Math.round(opts.perRegion),
        ...(opts.seed ? { seed: opts.seed } : {}),
        onProgress: (line) => console.error(line),
      });
      const json = `${JSON.stringify(result.report, null, 2)}\n`;
      if (opts.out) {
        writeFileSync(resolve(opts.out), json);
        console.error(
          `evaluate: report written to ${resolve(opts.out)} (${result.report.findings.length} findings, ` +
            `${result.report.messages_sent} messages, ${result.settled ? 'all settled' : 'time ran out'})`,
        );
      } else {
        process.stdout.write(json);
      }
      if (!result.settled) process.exitCode = 3;
    });
}
