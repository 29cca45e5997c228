import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from './app.ts';
import { openDatabase } from './db/open.ts';
import { createLogger } from './logger.ts';
import { TEST_ADMIN_TOKEN, TEST_HASH_KEY } from './test-support/probe.ts';

const root = resolve(import.meta.dirname, '..');

function waitForUrl(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((res, rej) => {
    let err = '';
    const timer = setTimeout(() => rej(new Error(`collector did not start: ${err}`)), timeoutMs);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m?.[1]) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`collector exited with ${code}: ${err}`));
    });
  });
}

describe('silentdrop collector', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sd-collector-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  function start() {
    const env = { ...process.env };
    delete env.DATABASE_URL;
    delete env.SILENTDROP_ADMIN_TOKEN;
    delete env.SILENTDROP_HASH_KEY;
    const child = spawn(
      process.execPath,
      ['bin/silentdrop.js', 'collector', '--data', dataDir, '--port', '0'],
      {
        cwd: root,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const out = { stdout: '' };
    child.stdout?.on('data', (d: Buffer) => {
      out.stdout += d.toString();
    });
    return { child, out };
  }

  function stop(child: ChildProcess): Promise<number | null> {
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGTERM');
    return exited;
  }

  it('starts on embedded Postgres with no set-up, answers /healthz, stops on SIGTERM and keeps its data', async () => {
    const first = start();
    let second: ReturnType<typeof start> | undefined;
    try {
      const url = await waitForUrl(first.child, 60_000);
      const res = await fetch(`${url}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok', database: 'ok' });
      expect(statSync(join(dataDir, 'pglite')).isDirectory()).toBe(true);
      expect(statSync(join(dataDir, 'admin-token')).mode & 0o777).toBe(0o600);
      const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
      const upload = await fetch(`${url}/admin/v1/term-lists?name=kept`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
        body: '六四 + 天安门\n',
      });
      expect(upload.status).toBe(201);
      expect(await stop(first.child)).toBe(0);
      expect(first.out.stdout).toMatch(/collector stopped/);

      // A restart on the same folder keeps the admin token and the stored data.
      second = start();
      const url2 = await waitForUrl(second.child, 60_000);
      const lists = await fetch(`${url2}/admin/v1/term-lists`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(lists.status).toBe(200);
      expect((await lists.json()).term_lists.map((t: { name: string }) => t.name)).toEqual(['kept']);
      expect(await stop(second.child)).toBe(0);
    } finally {
      for (const c of [first.child, second?.child]) if (c && c.exitCode === null) c.kill('SIGKILL');
    }
  });
});

describe('request logging', () => {
  it('never logs the client address, forwarded addresses or the admin token', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ level: 'trace', destination: sink });
    const database = await openDatabase({ dataDir: '', inMemory: true });
    await database.migrate();
    const app = await buildApp({
      db: database.db,
      logger,
      config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
    });
    try {
      await app.inject({
        method: 'GET',
        url: '/admin/v1/probes',
        remoteAddress: '203.0.113.7',
        headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'x-forwarded-for': '198.51.100.9' },
      });
      await app.inject({
        method: 'POST',
        url: '/probe/v1/events',
        remoteAddress: '203.0.113.7',
        payload: {},
      });
      const log = lines.join('');
      expect(lines.length).toBeGreaterThan(2);
      expect(log).not.toContain('203.0.113.7');
      expect(log).not.toContain('198.51.100.9');
      expect(log).not.toContain(TEST_ADMIN_TOKEN);
      expect(log).not.toMatch(/remoteAddress|remotePort|hostname/);
    } finally {
      await app.close();
      await database.close();
    }
  });
});

describe('closing the server', () => {
  it('closes the keep-alive connection of a request in flight when the close began', async () => {
    const database = await openDatabase({ dataDir: '', inMemory: true });
    await database.migrate();
    const app = await buildApp({
      db: database.db,
      config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
    });
    let arrived!: () => void;
    const inFlight = new Promise<void>((r) => {
      arrived = r;
    });
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    app.get('/test-only/slow', async () => {
      arrived();
      await released;
      return { ok: true };
    });
    // The response is sent once the close has begun (the collector's own preClose hook ran first).
    app.addHook('preClose', async () => release());
    const agent = new http.Agent({ keepAlive: true });
    try {
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      const response = new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get(`${url}/test-only/slow`, { agent }, resolve).on('error', reject);
      });
      await inFlight;
      const closed = app.close();
      const res = await response;
      res.resume();
      // Without it the connection stays open for the client's next request (or Node's
      // keep-alive timeout), and the close (a collector's exit on SIGTERM) waits for it.
      expect(res.statusCode).toBe(200);
      expect(res.headers.connection).toBe('close');
      await closed;
    } finally {
      agent.destroy();
      await app.close();
      await database.close();
    }
  });
});
