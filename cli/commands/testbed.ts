/**
 * `silentdrop testbed --policy FILE [--port N] [--host H] [--seed N]`: run the testbed
 * platform until SIGINT/SIGTERM; SIGHUP re-reads the policy file (a bad file is
 * reported and the running policy stays).
 */
import { type Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { startTestbed } from '../../testbed/index.ts';
import { CliError, reportCliError } from '../errors.ts';

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max)
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return n;
  };
}

interface Options {
  policy: string;
  port: number;
  host: string;
  seed?: number;
}

export function register(program: Command): void {
  program
    .command('testbed')
    .description('run the local chat platform with a censorship policy (web client + API)')
    .requiredOption('--policy <file>', 'policy file (YAML or JSON)')
    .option('--port <n>', 'port to listen on (0: any free port)', integer(0, 65535), 8700)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--seed <n>', 'seed for random draws (reproducible runs)', integer(0, 2 ** 32 - 1))
    .action(async (opts: Options) => {
      const logger = pino({
        name: 'testbed',
        level: process.env.SILENTDROP_LOG_LEVEL ?? 'info',
        redact: ['req.headers.authorization', 'token', 'password'],
        ...(process.stdout.isTTY ? { transport: { target: 'pino-pretty' } } : {}),
      });
      // Signals are taken from the start: one arriving while starting closes right after.
      let stopping: string | undefined;
      let wake: (() => void) | undefined;
      const onSignal = (signal: string) => () => {
        stopping ??= signal;
        wake?.();
      };
      process.once('SIGINT', onSignal('SIGINT'));
      process.once('SIGTERM', onSignal('SIGTERM'));

      const testbed = await startTestbed({
        policy: opts.policy,
        port: opts.port,
        host: opts.host,
        logger,
        ...(opts.seed === undefined ? {} : { seed: opts.seed }),
      }).catch((err: unknown) => {
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'EADDRINUSE') {
          throw new CliError(
            `port ${opts.port} on ${opts.host} is already in use; pick another with --port (0 picks any free port)`,
            'SD_ERR_PORT_IN_USE',
          );
        }
        if (e.code === 'EADDRNOTAVAIL' || e.code === 'EACCES') {
          throw new CliError(`cannot listen on ${opts.host}:${opts.port} (${e.code})`, 'SD_ERR_LISTEN');
        }
        throw err;
      });
      console.log(
        `testbed: ${testbed.url}  (policy ${testbed.policy().source}, ${testbed.policy().rules.length} rules)`,
      );

      const reload = (): void => {
        try {
          testbed.reloadPolicy(opts.policy);
          console.log(`testbed: policy reloaded from ${opts.policy}`);
        } catch (err) {
          reportCliError(err);
        }
      };
      process.on('SIGHUP', reload);
      if (!stopping) await new Promise<void>((resolve) => (wake = resolve));
      process.off('SIGHUP', reload);
      console.log(`testbed: ${stopping}, closing`);
      await testbed.close();
    });
}
