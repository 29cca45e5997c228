/** `silentdrop migrate [--data DIR]`: apply pending migrations to the configured database and exit. */
import type { Command } from 'commander';
import { loadConfig } from '../../collector/config.ts';
import { openDatabase } from '../../collector/db/open.ts';
import { CliError } from '../errors.ts';

export function register(program: Command): void {
  program
    .command('migrate')
    .description('apply database migrations (DATABASE_URL, or the embedded database in the data folder)')
    .option('--data <dir>', 'data folder (env SILENTDROP_DATA, default ./data)')
    .action(async (opts: { data?: string }) => {
      const config = loadConfig({ data: opts.data });
      let database: Awaited<ReturnType<typeof openDatabase>>;
      try {
        database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
      } catch (err) {
        throw new CliError(`cannot open the database: ${(err as Error).message}`, 'SD_ERR_DATABASE');
      }
      try {
        await database.migrate();
      } finally {
        await database.close();
      }
      console.log(
        `migrations applied (${database.driver === 'pg' ? 'DATABASE_URL' : `${config.dataDir}/pglite`})`,
      );
    });
}
