/**
 * `silentdrop probe --config FILE`: runs a probe until SIGTERM/SIGINT, then shuts down
 * gracefully (outbox flushed as far as the collector allows; the rest stays on disk).
 */
import type { Command } from 'commander';
import { startProbe } from '../../probe/agent.ts';
import { loadConfig } from '../../probe/config.ts';
import { CliError } from '../errors.ts';

export function register(program: Command): void {
  program
    .command('probe')
    .description('run a probe: check in with the collector, send canaries, observe accounts')
    .requiredOption('-c, --config <file>', 'probe config (YAML); see probe.example.yaml')
    .action(async (opts: { config: string }) => {
      const config = await loadConfig(opts.config);
      let probe: Awaited<ReturnType<typeof startProbe>>;
      try {
        probe = await startProbe(config, { handleSignals: true });
      } catch (err) {
        const e = err as { code?: unknown; message?: string };
        if (typeof e.code === 'string' && e.code.startsWith('SD_ERR_')) throw err;
        throw new CliError(`probe could not start: ${e.message ?? String(err)}`, 'SD_ERR_PROBE_START');
      }
      await probe.stopped;
    });
}
