/**
 * Whole `silentdrop evaluate` runs (cli/evaluate, in this process) on generated testbed policies
 * with 20, 100 and 500 term sets (`--sizes` picks some; about an hour in all on a 2-core machine,
 * 500 sets most of it): combinations whose terms are also listed alone,
 * a partial drop (probability 0.5), per-recipient scopes, 3 % background loss, three regions
 * (four for 500), direct chats and a group; default mode (screen first). Per size it prints the
 * messages sent, wall and CPU time, the longest event-loop stall, the verdicts settled, and
 * precision and recall of the report's findings against the policy (a finding is any verdict
 * but `none`; right when it is the verdict the policy implies in that scope).
 *
 *   npm run bench:evaluate [-- --sizes 20,100] [-- --minutes 10] [-- --why]
 *
 * Each size stops when every verdict settled or after its minutes (default 10; 60 for 500 sets,
 * which settled in 38 minutes in decision 024's run). `--full` is accepted (all three sizes, the
 * default).
 *
 * `--why` lists every verdict that differs from the policy (term set, scope, verdict, pairs) and
 * every verdict left open, after each size's row. `--data DIR` keeps each size's network (Postgres
 * included) in DIR/<size> for inspection instead of a temporary folder. The screens clear with the
 * clearance rule of decision 024 (the collector's default since decision 038); `--no-clearance`
 * runs them with the old rule (one intact pack clears a set). `--clearance` is accepted and changes
 * nothing.
 * `--log-level info` keeps the network's logs (each request with its response time) in
 * DIR/<size>/logs with `--data` (default `warn`).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { expectedVerdict, reportMismatches } from '../cli/evaluate/expect.ts';
import { generatePolicy } from '../cli/evaluate/generate.ts';
import { runEvaluation } from '../cli/evaluate/run.ts';

const { values } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    minutes: { type: 'string' },
    seed: { type: 'string', default: 'bench' },
    progress: { type: 'boolean', default: false },
    why: { type: 'boolean', default: false },
    data: { type: 'string' },
    clearance: { type: 'boolean', default: false },
    'no-clearance': { type: 'boolean', default: false },
    'log-level': { type: 'string' },
  },
});
const sizes = values.sizes ? values.sizes.split(',').map(Number) : [20, 100, 500];

const rows: string[] = [];
console.log(
  'size  regions  messages  wall s  cpu s  max stall ms  settled        precision  recall  (minutes allowed)',
);
for (const size of sizes) {
  const regions = size >= 500 ? 4 : 3;
  const g = generatePolicy({ sets: size, seed: values.seed, regions, partial: true });
  const minutes = Number(values.minutes ?? (size >= 500 ? 60 : 10));
  const stalls = monitorEventLoopDelay({ resolution: 10 });
  stalls.enable();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await runEvaluation({
    policy: g.policy,
    terms: g.terms,
    cadence: '*/2 * * * * *',
    deadlineSeconds: 3,
    accountsPerRegion: 2,
    timeoutMs: minutes * 60_000,
    seed: `${values.seed}-${size}`,
    ...(values.data ? { dataDir: `${values.data}/${size}` } : {}),
    screenClearance: !values['no-clearance'],
    testbedSeed: 7,
    ...(values.progress ? { onProgress: (line: string) => console.error(line) } : {}),
    ...(values['log-level'] ? { logLevel: values['log-level'] } : {}),
  });
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  stalls.disable();
  const findings = result.report.findings;
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (const f of findings) {
    const want = expectedVerdict(g.rules, f.terms, f.scope);
    const found = f.verdict !== 'none' && f.verdict !== 'inconclusive';
    if (want !== 'none') {
      if (f.verdict === want) tp++;
      else fn++;
      if (found && f.verdict !== want) fp++;
    } else if (found) fp++;
  }
  const precision = tp + fp === 0 ? 1 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 1 : tp / (tp + fn);
  const settled = findings.filter((f) => f.settled).length;
  const line = [
    String(size).padEnd(6),
    String(regions).padEnd(9),
    String(result.report.messages_sent).padEnd(10),
    wall.toFixed(0).padEnd(8),
    ((cpu.user + cpu.system) / 1e6).toFixed(0).padEnd(7),
    (stalls.max / 1e6).toFixed(0).padEnd(14),
    `${settled}/${findings.length}`.padEnd(15),
    precision.toFixed(3).padEnd(11),
    recall.toFixed(3).padEnd(8),
    `(${minutes})`,
  ].join('');
  rows.push(line);
  console.log(line);
  if (values.why) {
    for (const m of reportMismatches(g.rules, findings, g.termSets)) console.log(`  ${m}`);
    for (const f of findings.filter((x) => !x.settled)) {
      console.log(
        `  open: ${f.terms.join(' + ')} ${f.scope.conversation} ${f.scope.sender_region}→${f.scope.recipient_region} ${f.verdict} (n=${f.n_test}/${f.n_control})`,
      );
    }
  }
}
console.log(
  'precision/recall over term set × scope: a finding is any verdict but none; the policy implies ' +
    'suppressed, rejected or altered where a rule fires. The partial drop (p = 0.5) is found by ' +
    "the screen's clearance (decision 038; --no-clearance clears it on one intact pack); isolation " +
    'still assumes a rule fires every time.',
);
