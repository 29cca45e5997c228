#!/usr/bin/env node
/**
 * `silentdrop <command>`: one CLI for every part. Each file in ./commands exports
 * `register(program)` and adds its own command(s). This file lists them with their
 * one-line descriptions and imports only the command that runs, so `--version`,
 * `--help` and a probe do not load the collector, the database or the dashboard
 * (the list is in command-list.ts; command-list.test.ts keeps it and the files in step).
 */
import { CommanderError } from 'commander';
import { COMMANDS, createProgram, namedCommand } from './command-list.ts';
import { CliError, reportCliError } from './errors.ts';

/**
 * A package the command needs is not installed: a probe-only install leaves out the
 * optional peer @electric-sql/pglite (the collector's embedded database).
 */
function missingDependency(err: unknown): CliError | undefined {
  const e = err as { code?: unknown; message?: unknown };
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || typeof e.message !== 'string') return undefined;
  const name = /Cannot find package '([^']+)'/.exec(e.message)?.[1];
  if (!name) return undefined;
  return new CliError(
    `the package ${name} is not installed; install it beside silentdrop (npm install -g ${name}` +
      `${name === '@electric-sql/pglite' ? ', the embedded database' : ''})`,
    'SD_ERR_MISSING_DEPENDENCY',
  );
}

async function main(): Promise<void> {
  const program = createProgram();
  const name = namedCommand(process.argv.slice(2));
  if (name) {
    (await COMMANDS[name]!.load()).register(program);
  } else {
    // No command of ours named: the top-level help, --version, or an unknown command
    // (commander's error with suggestions) need only the names and descriptions.
    for (const [command, { description }] of Object.entries(COMMANDS)) {
      program.command(command).description(description);
    }
  }
  await program.parseAsync(process.argv);
}

try {
  await main();
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else {
    reportCliError(missingDependency(err) ?? err);
    process.exitCode = 1;
  }
}
