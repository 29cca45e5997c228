/**
 * The fuzz suite's files from outside: the probe config, the testbed policy, term lists (the
 * plain format and the Citizen Lab CSVs), the accounts file of `evaluate --accounts`, and the
 * collector's environment. An operator copies these from elsewhere, edits them by hand, or is
 * handed them; each is hostile until checked.
 *
 * Generated texts: any string, YAML of any value, the committed examples with one value
 * replaced by anything, and known hostile shapes (deep nesting, alias bombs, huge scalars,
 * oversize files). Property for every reader: it returns a valid result or throws its own
 * error type with a message that names the file (never a TypeError from deep inside, never a
 * hang, never a message that repeats the whole input).
 *
 * FUZZ_SEED=<n> replays another seed; FUZZ_RUNS=<n> scales every group.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDocument, stringify } from 'yaml';
import {
  AccountsFileError,
  MAX_ACCOUNTS_FILE_BYTES,
  parseAccountsFile,
} from '../cli/evaluate/accounts-network.ts';
import { loadConfig as loadCollectorConfig } from '../collector/config.ts';
import { SdError } from '../collector/errors.ts';
import { importCitizenLabCsv, MAX_TERM_FILE_BYTES, parseTermFile } from '../collector/planning/terms.ts';
import { ConfigError, MAX_PROBE_CONFIG_BYTES, parseConfig } from '../probe/config.ts';
import { tokenKey } from '../testbed/auth.ts';
import { loadState, MAX_STATE_BYTES, StateFileError } from '../testbed/persist.ts';
import { MAX_POLICY_BYTES, PolicyError, parsePolicy } from '../testbed/policy.ts';
import { Store } from '../testbed/store.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_202);
const SCALE = Number(process.env.FUZZ_RUNS ?? 1);
const ROOT = resolve(import.meta.dirname, '..');
const PROBE_EXAMPLE = readFileSync(join(ROOT, 'probe.example.yaml'), 'utf8');
const POLICY_EXAMPLE = readFileSync(join(ROOT, 'testbed/policies/demo.yaml'), 'utf8');
const ACCOUNTS_EXAMPLE = stringify({
  platform: 'xmpp',
  server: { host: '127.0.0.1', port: 5222, domain: 'localhost', tls: false },
  accounts: [
    { handle: 'cn1@localhost', password: 'pw-cn1', region: 'CN' },
    { handle: 'us1@localhost', password: 'pw-us1', region: 'US' },
  ],
  groups: [{ room: 'g1@conference.localhost', members: ['cn1@localhost', 'us1@localhost'] }],
});
/** A testbed state file as the testbed writes it: three accounts, a token, a direct and a group chat, messages. */
function stateExample(): string {
  const store = new Store();
  for (const [handle, region] of [
    ['alice', 'US'],
    ['bob', 'CN'],
    ['carol', 'TW'],
  ] as const) {
    store.addAccount({ handle, region, password: { salt: randomBytes(16), hash: randomBytes(32) } });
  }
  store.addToken(tokenKey('a token'), 'alice');
  const direct = store.direct('alice', 'bob');
  const group = store.group('friends', ['alice', 'bob', 'carol']);
  for (const [i, conv] of [direct, group, group].entries()) {
    const message = {
      id: store.newMessageId(),
      conversation: conv.id,
      from: 'alice',
      text: `hello ${i} 六四`,
      // now: the testbed keeps 6 hours of history
      at: new Date().toISOString(),
      delivered_at: new Date().toISOString(),
    };
    store.append('alice', 'own', message);
    for (const m of conv.members) if (m !== 'alice') store.append(m, 'delivered', message);
  }
  return JSON.stringify(store.snapshot());
}
const STATE_EXAMPLE = stateExample();

/** The JSON example with the value at one path replaced by anything (or removed). */
function mutatedJson(example: string): fc.Arbitrary<string> {
  const base = JSON.parse(example) as unknown;
  const all = paths(base).filter((p) => p.length > 0);
  return fc
    .tuple(fc.constantFrom(...all), fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined }))
    .map(([path, value]) => {
      const copy = JSON.parse(example) as Record<string | number, unknown>;
      let at: Record<string | number, unknown> = copy;
      for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
      const last = path.at(-1)!;
      if (value !== undefined) at[last] = value;
      else if (Array.isArray(at)) at.splice(Number(last), 1);
      else delete at[last];
      return JSON.stringify(copy);
    });
}

/** An error message may quote a value; it must not carry a whole hostile file with it. */
const MAX_MESSAGE = 4096;

/** Every path to a scalar or collection in a parsed YAML value. */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) out.push(...paths(v, [...prefix, i]));
  } else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}

/** The example with the value at one path replaced by anything (or removed). */
function mutated(example: string): fc.Arbitrary<string> {
  const base = parseDocument(example).toJS() as unknown;
  const all = paths(base).filter((p) => p.length > 0);
  return fc
    .tuple(fc.constantFrom(...all), fc.option(fc.anything({ maxDepth: 3, maxKeys: 5 }), { nil: undefined }))
    .map(([path, value]) => {
      const doc = parseDocument(example);
      if (value === undefined) doc.deleteIn(path);
      else doc.setIn(path, doc.createNode(value));
      return doc.toString();
    });
}

/** Shapes known to hurt parsers: deep nesting, alias bombs, huge scalars and files, odd bytes. */
function hostile(limit: number): fc.Arbitrary<string> {
  const aliasBomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 9; i++) {
    const prev = String.fromCharCode(96 + i);
    const cur = String.fromCharCode(97 + i);
    aliasBomb.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(',')}]`);
  }
  return fc.oneof(
    fc.integer({ min: 100, max: 20_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
    fc.integer({ min: 100, max: 5_000 }).map((n) => `${'a:\n '.repeat(n)}b`),
    fc.constant(aliasBomb.join('\n')),
    fc.constant(`data_dir: "${'x'.repeat(limit + 1)}"`),
    fc.constant('x'.repeat(limit + 1)),
    fc.constant('\u0000\uFEFF\uD800\r\r\n---\n...\n%YAML 9.9\n!!binary zz'),
    fc.string({ unit: 'binary', maxLength: 400 }),
  );
}

function texts(example: string, limit: number): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.string({ maxLength: 400 }), weight: 2 },
    { arbitrary: fc.anything({ maxDepth: 4 }).map((v) => stringify(v ?? null)), weight: 2 },
    { arbitrary: mutated(example), weight: 4 },
    { arbitrary: hostile(limit), weight: 1 },
  );
}

/** Runs the property and collects every failure (one line each) rather than stopping at the first. */
function check(name: string, runs: number, arb: fc.Arbitrary<string>, read: (text: string) => string | null) {
  const problems: string[] = [];
  fc.assert(
    fc.property(arb, (text) => {
      let problem: string | null;
      try {
        problem = read(text);
      } catch (err) {
        problem = `threw ${(err as Error)?.name}: ${String((err as Error)?.message).slice(0, 200)}`;
      }
      if (problem && problems.length < 20)
        problems.push(`${JSON.stringify(text.slice(0, 120))} → ${problem}`);
    }),
    { seed: SEED, numRuns: runs * SCALE },
  );
  expect(problems, `${name}: ${problems.length} broken cases`).toEqual([]);
}

/** null when `err` is the reader's own error with a bounded message naming `source`. */
function ownError(err: unknown, type: new (...a: never[]) => Error, source: string): string | null {
  if (!(err instanceof type))
    return `threw ${(err as Error)?.name ?? typeof err}: ${String(err).slice(0, 200)}`;
  if (!err.message.includes(source)) return `message does not name ${source}: ${err.message.slice(0, 200)}`;
  if (err.message.length > MAX_MESSAGE) return `message of ${err.message.length} characters`;
  return null;
}

describe('fuzz: files from outside', () => {
  it('the probe config: a valid config or a ConfigError naming the file', () => {
    check('probe config', 600, texts(PROBE_EXAMPLE, MAX_PROBE_CONFIG_BYTES), (text) => {
      try {
        const config = parseConfig(text, {
          file: 'probe.yaml',
          baseDir: '/srv/probe',
          env: { SILENTDROP_ENROLLMENT_TOKEN: 'token-from-env' },
        });
        return typeof config.dataDir === 'string' && Array.isArray(config.accounts) ? null : 'odd result';
      } catch (err) {
        return ownError(err, ConfigError, 'probe.yaml');
      }
    });
  });

  it('the testbed policy: a valid policy or a PolicyError naming the file', () => {
    check('policy', 600, texts(POLICY_EXAMPLE, MAX_POLICY_BYTES), (text) => {
      try {
        const policy = parsePolicy(text, 'policy.yaml');
        return Array.isArray(policy.rules) ? null : 'odd result';
      } catch (err) {
        return ownError(err, PolicyError, 'policy.yaml');
      }
    });
  });

  it('the accounts file: a valid file or an AccountsFileError naming it', () => {
    check('accounts', 600, texts(ACCOUNTS_EXAMPLE, MAX_ACCOUNTS_FILE_BYTES), (text) => {
      try {
        const file = parseAccountsFile(text, 'accounts.yaml');
        // What reaches the file system and the probe config must be checked by now.
        for (const a of file.accounts) if (!/^[A-Z]{2}$/.test(a.region)) return `region ${a.region} passed`;
        return file.accounts.length >= 2 ? null : 'fewer than two accounts passed';
      } catch (err) {
        return ownError(err, AccountsFileError, 'accounts.yaml');
      }
    });
  });

  it('the accounts file: a region that would name a folder outside the data folder is refused', () => {
    const doc = parseDocument(ACCOUNTS_EXAMPLE);
    doc.setIn(['accounts', 0, 'region'], '../../etc');
    expect(() => parseAccountsFile(doc.toString(), 'accounts.yaml')).toThrow(
      /accounts\.yaml: accounts\.0\.region: /,
    );
    doc.setIn(['accounts', 0, 'region'], 'CN');
    doc.setIn(['accounts', 1, 'handle'], 'CN1@localhost');
    doc.setIn(['accounts', 0, 'handle'], 'cn1@localhost');
    expect(() => parseAccountsFile(doc.toString(), 'accounts.yaml')).toThrow(/listed twice/);
  });

  it('the testbed state file: a store that works or a StateFileError naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sd-fuzz-state-'));
    const file = join(dir, 'state.json');
    try {
      const arb = fc.oneof(
        { arbitrary: fc.string({ maxLength: 400 }), weight: 1 },
        { arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)), weight: 2 },
        { arbitrary: mutatedJson(STATE_EXAMPLE), weight: 6 },
        { arbitrary: hostile(1000), weight: 1 },
      );
      check('testbed state', 600, arb, (text) => {
        writeFileSync(file, text);
        let store: Store;
        try {
          store = loadState(file);
        } catch (err) {
          return ownError(err, StateFileError, file);
        }
        // What the testbed does with a state it loaded: list, deliver, stream, save.
        const handles = store.snapshot().accounts.map((a) => a.handle);
        for (const h of handles) {
          store.conversationsOf(h);
          store.timeline(h);
        }
        if (handles.length >= 2) {
          const conv = store.direct(handles[0]!, handles[1]!);
          const at = new Date().toISOString();
          const message = {
            id: store.newMessageId(),
            conversation: conv.id,
            from: handles[0]!,
            text: 'x',
            at,
            delivered_at: at,
          };
          if (!store.append(handles[1]!, 'delivered', message)) return 'a listed account has no timeline';
        }
        JSON.parse(JSON.stringify(store.snapshot()));
        return null;
      });
      // The example itself loads, and an oversize file is refused before it is read.
      writeFileSync(file, STATE_EXAMPLE);
      expect(loadState(file).timeline('bob')).toHaveLength(3);
      expect(MAX_STATE_BYTES).toBeLessThan(2 ** 29);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('term lists: never throw; every refusal names a line of the file; nothing oversize is read', () => {
    const plain = fc.oneof(
      fc.array(fc.string({ maxLength: 60 }), { maxLength: 40 }).map((l) => l.join('\n')),
      fc.string({ unit: 'binary', maxLength: 2000 }),
      hostile(MAX_TERM_FILE_BYTES),
      fc.constant(`${'a + '.repeat(40)}b\n${'x'.repeat(2000)}\n+\n a + a `),
    );
    check('term file', 600, plain, (text) => {
      const { termSets, errors } = parseTermFile(text);
      const lines = text.split(/\r\n|\n|\r/).length;
      if (errors.some((e) => !(e.line >= 1 && e.line <= lines))) return 'an error names no line of the file';
      if (termSets.some((s) => s.length === 0 || s.some((t) => t.trim() === '')))
        return 'an empty term passed';
      if (Buffer.byteLength(text) > MAX_TERM_FILE_BYTES && termSets.length > 0)
        return 'an oversize file was read';
      return null;
    });
    const csv = fc.oneof(
      fc
        .array(fc.array(fc.string({ maxLength: 30 }), { maxLength: 6 }), { maxLength: 20 })
        .map((rows) =>
          [
            'Keyword,# of components,English translation',
            ...rows.map((r) => r.map((c) => `"${c.replaceAll('"', '""')}"`).join(',')),
          ].join('\n'),
        ),
      fc.string({ maxLength: 600 }).map((s) => `Keyword Combination,Date\n${s}`),
      fc.string({ unit: 'binary', maxLength: 600 }),
      hostile(MAX_TERM_FILE_BYTES),
    );
    check('citizen lab csv', 600, csv, (text) => {
      const { termSets, errors } = importCitizenLabCsv(text, { file: 'list.csv' });
      if (errors.some((e) => !Number.isInteger(e.line) || e.line < 1)) return 'an error names no line';
      if (termSets.some((s) => s.terms.length === 0)) return 'an empty set passed';
      if (Buffer.byteLength(text) > MAX_TERM_FILE_BYTES && termSets.length > 0)
        return 'an oversize file was read';
      return null;
    });
  });

  describe('the collector environment', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sd-fuzz-env-'));
    afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
    it('a valid config or one SD_ERR_CONFIG listing the problems', () => {
      const keys = [
        'DATABASE_URL',
        'DATABASE_POOL_SIZE',
        'HOST',
        'PORT',
        'LOG_LEVEL',
        'SILENTDROP_ADMIN_TOKEN',
        'SILENTDROP_HASH_KEY',
        'SILENTDROP_TRUST_PROXY',
        'SILENTDROP_CHECKIN_INTERVAL_MS',
        'SILENTDROP_SWEEP_INTERVAL_MS',
        'SILENTDROP_PROBE_SILENT_AFTER_MS',
        'SILENTDROP_EVENT_RETENTION_DAYS',
        'SILENTDROP_LOOKALIKE_RETENTION_DAYS',
        'SILENTDROP_RESEARCH_STATEMENT_TIMEOUT_MS',
        'SILENTDROP_EXPORT_MAX_CONCURRENT',
        'SILENTDROP_EXPORT_TIMEOUT_MS',
        'SILENTDROP_EXPORT_STALL_MS',
        'SILENTDROP_SCREEN_CLEARANCE',
      ];
      const value = fc.oneof(
        fc.string({ maxLength: 40 }),
        fc.integer().map(String),
        fc.double().map(String),
        fc.constantFrom('', ' ', '0', '-1', '1e309', 'NaN', '0x10', 'postgres://', 'true', '1,2,3'),
      );
      const env = fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: keys.length });
      const problems: string[] = [];
      fc.assert(
        fc.property(env, (e) => {
          try {
            const config = loadCollectorConfig({ data: dataDir }, { ...e, SILENTDROP_DATA: dataDir });
            if (!(Number.isInteger(config.port) && config.port >= 0 && config.port <= 65_535))
              problems.push(`port ${config.port} passed`);
            if (!(config.databasePoolSize >= 1)) problems.push(`pool ${config.databasePoolSize} passed`);
          } catch (err) {
            if (!(err instanceof SdError && err.code === 'SD_ERR_CONFIG'))
              problems.push(`${JSON.stringify(e)} → ${(err as Error)?.name}: ${(err as Error)?.message}`);
          }
        }),
        { seed: SEED, numRuns: 400 * SCALE },
      );
      expect(problems.slice(0, 20)).toEqual([]);
    });
  });
});
