/**
 * The CLI's commands by name, with the one-line description the top-level help shows,
 * and how to load each (cli/main.ts imports only the one that runs).
 */
import { Command } from 'commander';
import { PACKAGE_VERSION } from '../probe/version.ts';

export type Registrar = { register(program: Command): void };

/** Every command: its description (for the top-level help) and how to load it. */
export const COMMANDS: Record<string, { description: string; load: () => Promise<Registrar> }> = {
  admin: {
    description: 'administer a running collector over its admin API',
    load: () => import('./commands/admin.ts'),
  },
  collector: {
    description: 'run the collector (embedded Postgres in the data folder unless DATABASE_URL is set)',
    load: () => import('./commands/collector.ts'),
  },
  demo: {
    description: 'run a whole local network (collector, testbed, probes, campaign) until Ctrl-C',
    load: () => import('./commands/demo.ts'),
  },
  evaluate: {
    description:
      'test a term list on a local network (testbed policy or an XMPP accounts file) and write a report',
    load: () => import('./commands/evaluate.ts'),
  },
  migrate: {
    description: 'apply database migrations (DATABASE_URL, or the embedded database in the data folder)',
    load: () => import('./commands/migrate.ts'),
  },
  probe: {
    description: 'run a probe: check in with the collector, send canaries, observe accounts',
    load: () => import('./commands/probe.ts'),
  },
  testbed: {
    description: 'run the local chat platform with a censorship policy (web client + API)',
    load: () => import('./commands/testbed.ts'),
  },
};

export function createProgram(): Command {
  return (
    new Command('silentdrop')
      .description('Censorship measurement probe network for chat platforms')
      .version(PACKAGE_VERSION)
      .showHelpAfterError()
      // Options after a subcommand belong to it (`probe --config` vs `probe login --config`).
      .enablePositionalOptions()
      .exitOverride()
  );
}

/** The command named on the command line (`silentdrop help X` names X), if it is one of ours. */
export function namedCommand(args: readonly string[]): string | undefined {
  const words = args.filter((a) => !a.startsWith('-'));
  const name = words[0] === 'help' ? words[1] : words[0];
  return name !== undefined && Object.hasOwn(COMMANDS, name) ? name : undefined;
}
