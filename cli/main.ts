/**
 * `silentdrop <command>`: one CLI for every part. Each file in ./commands exports
 * `register(program)` and adds its own command(s); this file only assembles them.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { reportCliError } from './errors.ts';

const here = dirname(fileURLToPath(import.meta.url));
const pkgVersion = process.env.npm_package_version ?? '0.1.0';

const program = new Command('silentdrop')
  .description('Censorship measurement probe network for chat platforms')
  .version(pkgVersion)
  .showHelpAfterError()
  // Options after a subcommand belong to it (`probe --config` vs `probe login --config`).
  .enablePositionalOptions()
  .exitOverride();

const commandDir = join(here, 'commands');
const files = readdirSync(commandDir)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
  .sort();
for (const file of files) {
  const mod = (await import(pathToFileURL(join(commandDir, file)).href)) as {
    register?: (p: Command) => void;
  };
  mod.register?.(program);
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else {
    reportCliError(err);
    process.exitCode = 1;
  }
}
