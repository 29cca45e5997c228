/**
 * `silentdrop demo` (= `npm start`) as a person runs it: it starts, prints the URL, the
 * URL answers, canaries go out within the test's time, Ctrl-C (SIGINT) stops it with
 * exit 0; a second run on the same data folder continues — the same probe ids (no second
 * enrollment) and the same campaign (not created twice).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'sd-e2e-demo-'));
const running = new Set<ChildProcess>();

interface Demo {
  child: ChildProcess;
  output(): string;
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  stop(): Promise<number | null>;
}

function startDemo(): Demo {
  // Own process group, so afterAll can kill the demo and its probes together if a test fails.
  const child = spawn(
    process.execPath,
    [join(root, 'bin/silentdrop.js'), 'demo', '--data', dataDir, '--port', '0', '--progress-seconds', '2'],
    {
      cwd: root,
      detached: true,
      env: { ...process.env, SILENTDROP_DATA: '', DATABASE_URL: '', SILENTDROP_DEBUG: '' },
    },
  );
  running.add(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  return {
    child,
    output: () => out,
    async waitFor(pattern, timeoutMs) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const m = out.match(pattern);
        if (m) return m;
        if (child.exitCode !== null) throw new Error(`demo exited (${child.exitCode}):\n${out}`);
        if (Date.now() > end) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${out}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    stop() {
      child.kill('SIGINT');
      return exited;
    },
  };
}

const adminGet = async (url: string, path: string) => {
  const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  const res = await fetch(`${url}/admin/v1${path}`, { headers: { authorization: `Bearer ${token}` } });
  return (await res.json()) as Record<string, { id: string }[]>;
};

const probeIds = () =>
  ['CN', 'US', 'AU'].map(
    (r) =>
      (JSON.parse(readFileSync(join(dataDir, 'probes', r, 'identity.json'), 'utf8')) as { probe_id: string })
        .probe_id,
  );

afterAll(() => {
  for (const child of running) {
    if (child.pid) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe('silentdrop demo', () => {
  it('reports a busy --port in one line, without a stack trace', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const child = spawn(
        process.execPath,
        [join(root, 'bin/silentdrop.js'), 'demo', '--data', dataDir, '--port', String(port)],
        {
          env: { ...process.env, SILENTDROP_DEBUG: '' },
        },
      );
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(1);
      expect(err.trim()).toBe(
        `silentdrop: SD_ERR_PORT_IN_USE: port ${port} on 127.0.0.1 is already in use; pick another with --port (0 picks any free port)`,
      );
    } finally {
      blocker.close();
    }
  });

  let firstIds: string[] = [];

  it('starts, prints the URL that answers, sends canaries, and stops on Ctrl-C with exit 0', async () => {
    const demo = startDemo();
    const [, url] = await demo.waitFor(/dashboard\s+(http:\/\/127\.0\.0\.1:\d+)\//, 90_000);
    expect(demo.output()).toMatch(/API\s+http:\/\/127\.0\.0\.1:\d+\/api\/v1/);
    expect(demo.output()).toMatch(/first run: 3 probe\(s\) enrolled; campaign created/);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect((await fetch(`${url}/`)).status).toBeLessThan(500);
    // Canaries go out: a progress line with outcomes reported by the probes.
    await demo.waitFor(/sent to [1-9]\d* recipients: delivered [1-9]/, 100_000);
    firstIds = probeIds();
    expect((await adminGet(url!, '/campaigns')).campaigns).toHaveLength(1);
    expect(await demo.stop()).toBe(0);
    expect(demo.output()).toContain('demo: SIGINT, stopping');
    expect(demo.output()).toContain('demo: stopped');
    expect(demo.output()).not.toMatch(/\n\s+at /);
  }, 200_000);

  it('continues with the stored data on a second run: same probes, same campaign', async () => {
    expect(firstIds).toHaveLength(3);
    const demo = startDemo();
    const [, url] = await demo.waitFor(/dashboard\s+(http:\/\/127\.0\.0\.1:\d+)\//, 90_000);
    expect(demo.output()).toContain('continuing: probes reused their keys; campaign reused');
    expect(probeIds()).toEqual(firstIds);
    expect((await adminGet(url!, '/probes')).probes?.map((p) => p.id).sort()).toEqual([...firstIds].sort());
    expect((await adminGet(url!, '/campaigns')).campaigns).toHaveLength(1);
    await demo.waitFor(/\[\d\d:\d\d:\d\d\] rounds/, 30_000);
    expect(await demo.stop()).toBe(0);
  }, 200_000);
});
