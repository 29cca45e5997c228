/** `silentdrop collector [--port] [--host] [--data DIR] [--env-file FILE]`: run the collector until SIGTERM/SIGINT. */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig, withEnvFile } from '../../collector/config.ts';
import { startCollector } from '../../collector/server.ts';

interface Options {
  port?: string;
  host?: string;
  data?: string;
  envFile?: string;
}

export function register(program: Command): void {
  program
    .command('collector')
    .description('run the collector (embedded Postgres in the data folder unless DATABASE_URL is set)')
    .option('--port <port>', 'port to listen on (env PORT, default 8080; 0 picks a free one)')
    .option('--host <host>', 'address to listen on (env HOST, default 127.0.0.1)')
    .option('--data <dir>', 'data folder (env SILENTDROP_DATA, default ./data)')
    .option(
      '--env-file <file>',
      'settings file, KEY=value lines (default ./.env when present); the environment wins',
    )
    .action(async (opts: Options) => {
      const envFile = opts.envFile ?? (existsSync('.env') ? '.env' : undefined);
      const env = envFile ? withEnvFile(process.env, envFile) : process.env;
      const config = loadConfig({ port: opts.port, host: opts.host, data: opts.data }, env);
      if (envFile) console.error(`silentdrop collector: settings from ${envFile} (the environment wins)`);
      const running = await startCollector(config, { handleSignals: true });
      // One plain line for people and scripts (the log has the rest).
      console.error(`silentdrop collector listening on ${running.url}`);
    });
}
