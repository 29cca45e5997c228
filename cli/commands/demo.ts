/**
 * `silentdrop demo [--data DIR] [--port N]` (= `npm start`): a whole network on this
 * machine — collector on embedded Postgres, the testbed with the demo policy, probes in
 * CN, US and AU as separate processes, a campaign with controls — printing where the
 * dashboard and API are and a progress line every few seconds, until Ctrl-C. Run again
 * on the same data folder, it continues with the stored data.
 */

import { resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { CliError } from '../errors.ts';
import { demoOptions } from '../local/demo-setup.ts';
import { type LocalNetwork, startLocalNetwork } from '../local/network.ts';
import { firstFreePort, portIsFree } from '../local/ports.ts';
import { formatProgress, readProgress } from '../local/progress.ts';

interface Options {
  data?: string;
  port?: number;
  adapter: 'testbed' | 'browser';
  progressSeconds: number;
}

const DEFAULT_PORT = 8080;
const HOST = '127.0.0.1';

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max)
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return n;
  };
}

/** The explicit port if free (0: any), else the default or the next free one after it. */
async function choosePort(explicit: number | undefined): Promise<number> {
  if (explicit !== undefined) {
    if (explicit === 0 || (await portIsFree(HOST, explicit))) return explicit;
    throw new CliError(
      `port ${explicit} on ${HOST} is already in use; pick another with --port (0 picks any free port)`,
      'SD_ERR_PORT_IN_USE',
    );
  }
  const port = await firstFreePort(HOST, DEFAULT_PORT);
  if (port === undefined) return 0;
  if (port !== DEFAULT_PORT) console.log(`demo: port ${DEFAULT_PORT} is busy, using ${port}`);
  return port;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('run a whole local network (collector, testbed, probes, campaign) until Ctrl-C')
    .option('--data <dir>', 'data folder (env SILENTDROP_DATA, default ./data)')
    .option(
      '--port <n>',
      `collector port (default ${DEFAULT_PORT} or the next free one; 0: any)`,
      integer(0, 65535),
    )
    .option(
      '--adapter <name>',
      'how probes drive the testbed: testbed (API) or browser (web client)',
      'testbed',
    )
    .option('--progress-seconds <n>', 'seconds between progress lines', integer(1, 3600), 5)
    .action(async (opts: Options) => {
      if (opts.adapter !== 'testbed' && opts.adapter !== 'browser') {
        throw new CliError(`--adapter must be testbed or browser, got "${opts.adapter}"`, 'SD_ERR_CLI');
      }
      const dataDir = resolve(opts.data ?? process.env.SILENTDROP_DATA ?? './data');
      // Signals are taken from the start: Ctrl-C while starting stops right after.
      let stopping: string | undefined;
      let wake: (() => void) | undefined;
      const onSignal = (signal: string) => () => {
        if (stopping) return;
        stopping = signal;
        wake?.();
      };
      process.on('SIGINT', onSignal('SIGINT'));
      process.on('SIGTERM', onSignal('SIGTERM'));

      const port = await choosePort(opts.port);
      console.log(`demo: starting in ${dataDir} …`);
      // From a clone the dashboard is built here when stale (Vite, a dev dependency); the
      // compiled package ships it built (`npm run build`).
      if (import.meta.url.endsWith('.ts')) {
        const { buildDashboard, dashboardStale } = await import('../../collector/http/dashboard-build.ts');
        if (dashboardStale()) {
          console.log('demo: building the dashboard (dashboard/dist) …');
          await buildDashboard({ quiet: true });
        }
      }
      let net: LocalNetwork;
      try {
        net = await startLocalNetwork(demoOptions(dataDir, port, opts.adapter));
      } catch (err) {
        const message = (err as Error).message;
        if (/EADDRINUSE/.test(message)) {
          throw new CliError(
            `port ${port} on ${HOST} is already in use; pick another with --port`,
            'SD_ERR_PORT_IN_USE',
          );
        }
        throw err;
      }
      const url = net.collector.url;
      const c = net.campaign;
      const probes = [...net.probes.values()]
        .map((p) => `${p.region} ${net.probeIds[p.region]?.slice(0, 8)} (pid ${p.pid})`)
        .join(', ');
      console.log(
        [
          `demo: ${net.enrolled > 0 ? `first run: ${net.enrolled} probe(s) enrolled` : 'continuing: probes reused their keys'}; campaign ${net.campaignCreated ? 'created' : 'reused'}`,
          `  dashboard   ${url}/#/overview?grain=minute`,
          `  API         ${url}/api/v1`,
          `  API docs    ${url}/docs`,
          `  admin API   ${url}/admin/v1  (bearer token in ${resolve(dataDir, 'admin-token')})`,
          `  testbed     ${net.testbed.url}/  (web client; policy testbed/policies/demo.yaml)`,
          `  probes      ${probes}  (logs: ${resolve(dataDir, 'probes')}/<region>/probe.log)`,
          `  campaign    "${c.name}" ${c.id}: ${c.term_sets_per_round} term sets + controls per round, cron "${c.cadence}", deadline ${c.deadline_seconds} s`,
          `  accounts    ${net.accounts.map((a) => a.handle).join(', ')} in ${net.conversations.length} conversations`,
          'demo: running; Ctrl-C stops it',
        ].join('\n'),
      );

      const tick = async () => {
        try {
          console.log(formatProgress(await readProgress(net)));
        } catch (err) {
          console.log(`[progress unavailable: ${(err as Error).message}]`);
        }
      };
      const timer = setInterval(() => void tick(), opts.progressSeconds * 1000);
      for (const p of net.probes.values()) {
        void p.exited.then((code) => {
          if (!stopping) console.log(`demo: the ${p.region} probe exited (code ${code}); see its probe.log`);
        });
      }
      if (!stopping) await new Promise<void>((r) => (wake = r));
      clearInterval(timer);
      console.log(`demo: ${stopping}, stopping probes, testbed and collector …`);
      await net.stop();
      console.log('demo: stopped; run again to continue with the stored data');
      // Should a library leave a handle open, do not hang after a clean stop.
      setTimeout(() => process.exit(0), 3000).unref();
    });
}
