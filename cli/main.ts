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
import { reportCliError } from './errors.ts';

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
    reportCliError(err);
    process.exitCode = 1;
  }
}
