/**
 * What `silentdrop demo` runs: the demo policy shipped in the repo, term sets that
 * exercise every rule in it plus benign ones, three regions, and a cadence fast enough
 * that something happens within a minute.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocalNetworkOptions } from './network.ts';

export const DEMO_POLICY = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../testbed/policies/demo.yaml',
);

export const DEMO_TERM_SETS: string[][] = [
  ['六四'], // group-june4-cn: silent group drop for CN recipients
  ['天安门事件'], // group-june4-cn (the other term)
  ['709', '律师'], // combo-709: both together are dropped for CN recipients
  ['709'], // … each alone passes
  ['律师'],
  ['维权'], // slow-review: delayed 20 s, past the 10 s deadline
  ['法轮功'], // overt: the sender sees a notice
  ['习近平'], // mask: CN recipients get "***"
  ['图书馆'], // benign
  ['自行车'], // benign
];

export function demoOptions(
  dataDir: string,
  port: number,
  adapter: 'testbed' | 'browser',
): LocalNetworkOptions {
  return {
    dataDir,
    policy: DEMO_POLICY,
    termSets: DEMO_TERM_SETS,
    regions: { CN: 2, US: 2, AU: 1 },
    cadence: '*/30 * * * * *',
    deadlineSeconds: 10,
    adapter,
    probeMode: 'process',
    campaign: { name: 'demo', termSetsPerRound: 3 },
    collector: { port, checkinIntervalMs: 10_000, sweepIntervalMs: 1000 },
    probeCheckinCron: '*/5 * * * * *',
  };
}
