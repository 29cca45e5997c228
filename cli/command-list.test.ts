import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS, createProgram, namedCommand } from './command-list.ts';

const root = new URL('../', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

describe('the CLI command list', () => {
  it('names every command file, with the description the command registers', async () => {
    const files = readdirSync(join(root, 'cli/commands'))
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .map((f) => f.replace(/\.ts$/, ''))
      .sort();
    expect(Object.keys(COMMANDS).sort()).toEqual(files);
    for (const [name, entry] of Object.entries(COMMANDS)) {
      const program = createProgram();
      (await entry.load()).register(program);
      expect(program.commands.map((c) => c.name())).toEqual([name]);
      expect(program.commands[0]!.description()).toBe(entry.description);
    }
  });

  it('finds the command a command line names, also after `help`', () => {
    expect(namedCommand(['probe', '--config', 'probe.yaml'])).toBe('probe');
    expect(namedCommand(['help', 'collector'])).toBe('collector');
    expect(namedCommand(['--version'])).toBeUndefined();
    expect(namedCommand(['nosuch'])).toBeUndefined();
    expect(namedCommand(['toString'])).toBeUndefined();
  });

  it('prints the package version and every command without loading them', () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [join(root, 'bin/silentdrop.js'), ...args], {
        encoding: 'utf8',
        timeout: 60_000,
      });
    const version = run('--version');
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toBe(pkg.version);
    const help = run('--help');
    expect(help.status).toBe(0);
    for (const [name, { description }] of Object.entries(COMMANDS)) {
      expect(help.stdout).toMatch(new RegExp(`\\n  ${name} `));
      expect(help.stdout.replace(/\s+/g, ' ')).toContain(description);
    }
    const unknown = run('nosuch');
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toContain("unknown command 'nosuch'");
  });
});
