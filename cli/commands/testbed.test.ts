import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
const demo = join(root, 'testbed/policies/demo.yaml');

function run(
  args: string[],
  untilOutput?: RegExp,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'bin/silentdrop.js'), 'testbed', ...args], {
      env: { ...process.env, SILENTDROP_DEBUG: '' },
    });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    child.stdout.on('data', (d) => {
      stdout += d;
      if (!signalled && untilOutput?.test(stdout)) {
        signalled = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('silentdrop testbed', () => {
  it('prints its URL and closes cleanly on SIGTERM', async () => {
    const r = await run(['--policy', demo, '--port', '0'], /testbed: http:\/\/127\.0\.0\.1:\d+ /);
    expect(r.stdout).toMatch(/testbed: http:\/\/127\.0\.0\.1:\d+ {2}\(policy demo\.yaml, 5 rules\)/);
    expect(r.stdout).toContain('SIGTERM, closing');
    expect(r.code).toBe(0);
  });

  it('reports a busy port in one line, without a stack trace', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await run(['--policy', demo, '--port', String(port)]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toBe(
        `silentdrop: SD_ERR_PORT_IN_USE: port ${port} on 127.0.0.1 is already in use; pick another with --port (0 picks any free port)`,
      );
    } finally {
      blocker.close();
    }
  });

  it('refuses a malformed policy naming the field and line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tb-cli-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      'regions: [CN]\nrules:\n  - { id: r, match: { any: [x] }, action: drop, probability: 2 }\n',
    );
    const r = await run(['--policy', file, '--port', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('SD_ERR_TESTBED_POLICY');
    expect(r.stderr).toMatch(/bad\.yaml:3:\d+ rules\[0\]\.probability: must be a number from 0 to 1, got 2/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
