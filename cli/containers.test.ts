/**
 * The container files agree with the package: docker-compose.yml and the Dockerfile run
 * commands the CLI has, on the port the collector listens on, with environment
 * variables the code (or the probe config) reads. No container engine runs here; these
 * checks and `docker-compose config` in .ci/run are what keeps the files right.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../collector/config.ts';
import { COMMANDS, createProgram } from './command-list.ts';

const root = new URL('../', import.meta.url).pathname;
const read = (f: string) => readFileSync(join(root, f), 'utf8');
const pkg = JSON.parse(read('package.json')) as {
  bin: Record<string, string>;
  engines: { node: string };
  scripts: Record<string, string>;
};

interface Stage {
  name: string;
  from: string;
  lines: string[];
}

/** The Dockerfile's stages with their instructions (continuation lines joined). */
function dockerStages(text: string): { args: Record<string, string>; stages: Stage[] } {
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of logical) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) {
      stages.push({ name: from[2] ?? '', from: from[1]!, lines: [] });
    } else if (stages.length === 0 && /^ARG\s/i.test(line)) {
      const [k, v] = line.slice(4).trim().split('=');
      args[k!] = v ?? '';
    } else {
      stages.at(-1)?.lines.push(line);
    }
  }
  return { args, stages };
}

const instr = (stage: Stage, name: string) =>
  stage.lines
    .filter((l) => l.toUpperCase().startsWith(`${name} `))
    .map((l) => l.slice(name.length + 1).trim());
const envNames = (stage: Stage) =>
  instr(stage, 'ENV').flatMap((l) => [...l.matchAll(/([A-Z_][A-Z0-9_]*)=/g)].map((m) => m[1]!));

/** Every environment variable the shipped code reads (process.env.X, env.X). */
function namesTheCodeReads(): Set<string> {
  const names = new Set<string>();
  for (const dir of ['cli', 'collector', 'probe', 'protocol', 'testbed']) {
    for (const f of readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })) {
      if (!f.endsWith('.ts') || f.endsWith('.test.ts')) continue;
      const full = join(root, dir, f);
      if (!statSync(full).isFile()) continue;
      for (const m of readFileSync(full, 'utf8').matchAll(/\benv\.([A-Z_][A-Z0-9_]*)/g)) names.add(m[1]!);
    }
  }
  return names;
}

/** Read by others, not by silentdrop: Node, Puppeteer, the postgres image. */
const THIRD_PARTY = new Set(['NODE_ENV', 'PUPPETEER_SKIP_DOWNLOAD', 'PUPPETEER_EXECUTABLE_PATH']);

const { args, stages } = dockerStages(read('Dockerfile'));
const stage = (name: string) => {
  const s = stages.find((x) => x.name === name);
  if (!s) throw new Error(`no stage ${name} in the Dockerfile`);
  return s;
};
const compose = parse(read('docker-compose.yml')) as {
  services: Record<string, Record<string, unknown>>;
  volumes: Record<string, unknown>;
};
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, checked field by field below
const service = (name: string) => compose.services[name] as Record<string, any>;

describe('the Dockerfile', () => {
  it('builds from the Node major the package runs on, compiles with the build script, runs as non-root', () => {
    const major = /(\d+)/.exec(pkg.engines.node)![1];
    expect(args.NODE_IMAGE).toBe(`node:${major}-bookworm-slim`);
    for (const s of stages) expect(s.from).toBe(`\${NODE_IMAGE}`);
    expect(instr(stage('build'), 'RUN')).toContain('npm run build');
    expect(pkg.scripts.build).toBeDefined();
    for (const target of ['collector', 'probe']) {
      const s = stage(target);
      expect(instr(s, 'USER')).toEqual(['node']);
      expect(instr(s, 'HEALTHCHECK')).toHaveLength(1);
      // The image's `silentdrop` is the package's bin, running dist/ from the build stage.
      expect(instr(s, 'COPY')).toContain(`${pkg.bin.silentdrop} ./${pkg.bin.silentdrop}`);
      expect(instr(s, 'COPY')).toContain('--from=build /src/dist ./dist');
      expect(instr(s, 'RUN').join(' ')).toContain(
        `ln -s /app/${pkg.bin.silentdrop} /usr/local/bin/silentdrop`,
      );
      expect(instr(s, 'ENTRYPOINT')).toEqual(['["silentdrop"]']);
      for (const c of instr(s, 'COPY').filter((l) => !l.startsWith('--from'))) {
        for (const src of c.split(/\s+/).slice(0, -1)) expect(statSync(join(root, src)).isFile()).toBe(true);
      }
    }
    // A probe image installs no embedded database and no downloaded browser; Debian's chromium instead.
    expect(instr(stage('probe-deps'), 'RUN').join(' ')).toContain('--omit=dev --omit=optional');
    expect(instr(stage('probe'), 'RUN').join(' ')).toMatch(/apt-get install .*\bchromium\b/);
    expect(instr(stage('collector-deps'), 'RUN').join(' ')).toContain('--omit=dev');
    const ignore = read('.dockerignore').split('\n');
    for (const p of ['node_modules', 'dist', 'data', '.env']) expect(ignore).toContain(p);
  });

  it('runs commands the CLI has, with options it takes', async () => {
    const cmd = (s: Stage) => JSON.parse(instr(s, 'CMD')[0]!) as string[];
    expect(cmd(stage('collector'))).toEqual(['collector']);
    expect(cmd(stage('probe'))).toEqual(['probe', '--config', '/etc/silentdrop/probe.yaml']);
    for (const command of [cmd(stage('collector')), cmd(stage('probe'))]) {
      const program = createProgram();
      (await COMMANDS[command[0]!]!.load()).register(program);
      const options = program.commands[0]!.options.map((o) => o.long);
      for (const flag of command.filter((a) => a.startsWith('--'))) expect(options).toContain(flag);
    }
  });

  it('exposes the port the collector listens on, and sets only variables someone reads', () => {
    const data = mkdtempSync(join(tmpdir(), 'sd-containers-'));
    try {
      const env = Object.fromEntries(
        instr(stage('collector'), 'ENV')
          .flatMap((l) => [...l.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)])
          .map((m) => [m[1]!, m[2]!]),
      );
      const config = loadConfig({}, { ...env, SILENTDROP_DATA: data });
      expect(instr(stage('collector'), 'EXPOSE')).toEqual([String(config.port)]);
      expect(config.host).toBe('0.0.0.0');
      expect(instr(stage('collector'), 'HEALTHCHECK')[0]).toContain('/healthz');
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
    const read = namesTheCodeReads();
    for (const s of [stage('collector'), stage('probe')]) {
      for (const name of envNames(s)) expect(read.has(name) || THIRD_PARTY.has(name), name).toBe(true);
    }
    // The probe healthcheck watches clock.json, which the agent rewrites at every check-in.
    expect(read.has('SILENTDROP_DATA')).toBe(true);
    expect(readFileSync(join(root, 'probe/agent.ts'), 'utf8')).toContain(
      "join(config.dataDir, 'clock.json')",
    );
    expect(instr(stage('probe'), 'HEALTHCHECK')[0]).toContain('/var/lib/silentdrop/clock.json');
  });
});

describe('docker-compose.yml', () => {
  it('runs postgres from the official image with a volume and a healthcheck', () => {
    const pg = service('postgres');
    expect(pg.image).toMatch(/^postgres:\d+/);
    expect(pg.volumes).toContain('postgres-data:/var/lib/postgresql/data');
    expect(pg.healthcheck.test.join(' ')).toContain('pg_isready');
    expect(compose.volumes).toHaveProperty('postgres-data');
  });

  it('runs the collector from the Dockerfile on postgres, with the port, variables and healthcheck of the package', () => {
    const c = service('collector');
    expect(c.build).toEqual({ context: '.', target: 'collector' });
    expect(c.command).toEqual(JSON.parse(instr(stage('collector'), 'CMD')[0]!));
    expect(c.depends_on.postgres.condition).toBe('service_healthy');
    const pg = service('postgres').environment;
    const url = new URL(c.environment.DATABASE_URL.replace(/\$\{[^}]*\}/, 'secret'));
    expect(url.hostname).toBe('postgres');
    expect(url.username).toBe(pg.POSTGRES_USER);
    expect(url.pathname).toBe(`/${pg.POSTGRES_DB}`);
    const read = namesTheCodeReads();
    for (const name of Object.keys(c.environment)) expect(read.has(name), name).toBe(true);
    for (const name of ['DATABASE_URL', 'SILENTDROP_ADMIN_TOKEN', 'SILENTDROP_HASH_KEY']) {
      expect(c.environment[name]).toMatch(/\$\{\w+:\?/); // required from .env
    }
    const port = c.environment.PORT as string;
    expect(instr(stage('collector'), 'EXPOSE')).toEqual([port]);
    expect(c.ports).toEqual([`127.0.0.1:\${COLLECTOR_PORT:-8080}:${port}`]);
    expect(c.healthcheck.test.join(' ')).toContain(`http://127.0.0.1:${port}/healthz`);
    expect(c.volumes).toEqual([`collector-data:${c.environment.SILENTDROP_DATA}`]);
  });

  it('runs a probe under a profile, with its config and state in volumes', () => {
    const p = service('probe');
    expect(p.profiles).toEqual(['probe']);
    expect(p.build).toEqual({ context: '.', target: 'probe' });
    const cmd = JSON.parse(instr(stage('probe'), 'CMD')[0]!) as string[];
    expect(p.command).toEqual(cmd);
    const configDir = cmd[2]!.replace(/\/[^/]+$/, '');
    expect(p.volumes.some((v: string) => v.endsWith(`:${configDir}:ro`))).toBe(true);
    expect(p.volumes).toContain('probe-data:/var/lib/silentdrop');
    // The enrollment token reaches the probe the way probe.example.yaml reads it.
    expect(read('probe.example.yaml')).toContain('env:SILENTDROP_ENROLLMENT_TOKEN');
    expect(Object.keys(p.environment)).toContain('SILENTDROP_ENROLLMENT_TOKEN');
    const names = namesTheCodeReads();
    for (const name of Object.keys(p.environment)) {
      expect(names.has(name) || name === 'SILENTDROP_ENROLLMENT_TOKEN', name).toBe(true);
    }
  });

  it('takes every variable it substitutes from compose.example.env', () => {
    const used = new Set([...read('docker-compose.yml').matchAll(/\$\{(\w+)/g)].map((m) => m[1]!));
    const example = new Set(
      [...read('compose.example.env').matchAll(/^([A-Z_][A-Z0-9_]*)=/gm)].map((m) => m[1]!),
    );
    expect([...used].filter((n) => !example.has(n))).toEqual([]);
  });
});
