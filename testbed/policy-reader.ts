/**
 * Reading a YAML (or JSON) document node by node, so every problem names its field
 * path (`rules[2].probability`) and, when the policy came from a file, its line.
 * Problems are collected, not thrown one at a time: a policy author sees them all.
 */
import { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter, type Node } from 'yaml';

export interface PolicyIssue {
  /** Field path, e.g. `rules[0].scope.sender_region`; `(root)` for the document itself. */
  path: string;
  line?: number;
  column?: number;
  message: string;
}

export class Reader {
  readonly issues: PolicyIssue[] = [];

  constructor(
    private readonly doc: Document,
    private readonly lineCounter?: LineCounter,
  ) {}

  /** The node with aliases (`*anchor`) followed. */
  resolve(node: unknown): unknown {
    if (isAlias(node)) return node.resolve(this.doc) ?? null;
    return node;
  }

  report(path: string, node: unknown, message: string): void {
    const issue: PolicyIssue = { path: path || '(root)', message };
    const range = (node as Node | undefined)?.range;
    if (this.lineCounter && range) {
      const pos = this.lineCounter.linePos(range[0]);
      issue.line = pos.line;
      issue.column = pos.col;
    }
    this.issues.push(issue);
  }

  /**
   * The entries of a mapping node, keyed by name; reports a non-mapping, unknown keys
   * (with a did-you-mean hint) and missing required keys.
   */
  map(
    node: unknown,
    path: string,
    allowed: readonly string[],
    required: readonly string[] = [],
  ): Map<string, unknown> | undefined {
    const n = this.resolve(node);
    if (!isMap(n)) {
      this.report(path, n, `must be a mapping with keys ${allowed.join(', ')}, got ${describe(n)}`);
      return undefined;
    }
    const out = new Map<string, unknown>();
    for (const pair of n.items) {
      const key = this.resolve(pair.key);
      const name = isScalar(key) ? String(key.value) : undefined;
      const keyPath = join(path, name ?? '?');
      if (name === undefined) {
        this.report(path, key, 'keys must be plain names');
        continue;
      }
      if (!allowed.includes(name)) {
        const hint = closest(name, allowed);
        this.report(
          keyPath,
          key,
          `unknown key "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}; allowed: ${allowed.join(', ')}`,
        );
        continue;
      }
      out.set(name, pair.value ?? null);
    }
    for (const key of required) {
      if (!out.has(key)) this.report(path, n, `missing required key "${key}"`);
    }
    return out;
  }

  /** The items of a sequence node, or undefined (reported) if it is not one. */
  seq(node: unknown, path: string, what: string): unknown[] | undefined {
    const n = this.resolve(node);
    if (!isSeq(n)) {
      this.report(path, n, `must be a list of ${what}, got ${describe(n)}`);
      return undefined;
    }
    return n.items;
  }

  scalarValue(node: unknown): unknown {
    const n = this.resolve(node);
    return isScalar(n) ? n.value : undefined;
  }

  string(node: unknown, path: string, opts: { allowEmpty?: boolean } = {}): string | undefined {
    const n = this.resolve(node);
    const v = isScalar(n) ? n.value : undefined;
    if (typeof v !== 'string') {
      const hint =
        typeof v === 'number' ? ` (quote it: "${String((n as { source?: string }).source ?? v)}")` : '';
      this.report(path, n, `must be a string, got ${describe(n)}${hint}`);
      return undefined;
    }
    if (!opts.allowEmpty && v.trim() === '') {
      this.report(path, n, 'must not be empty');
      return undefined;
    }
    return v;
  }

  number(
    node: unknown,
    path: string,
    range: { min: number; max?: number; integer?: boolean },
  ): number | undefined {
    const n = this.resolve(node);
    const v = isScalar(n) ? n.value : undefined;
    const bounds = range.max === undefined ? `>= ${range.min}` : `from ${range.min} to ${range.max}`;
    const kind = range.integer ? 'an integer' : 'a number';
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.report(path, n, `must be ${kind} ${bounds}, got ${describe(n)}`);
      return undefined;
    }
    if (
      v < range.min ||
      (range.max !== undefined && v > range.max) ||
      (range.integer && !Number.isInteger(v))
    ) {
      this.report(path, n, `must be ${kind} ${bounds}, got ${v}`);
      return undefined;
    }
    return v;
  }

  /** An ISO 8601 date-time with a time zone (`2026-06-04T00:00:00Z`), as epoch ms. */
  dateTime(node: unknown, path: string): number | undefined {
    const n = this.resolve(node);
    const v = isScalar(n) ? n.value : undefined;
    const ms = typeof v === 'string' ? parseDateTime(v) : undefined;
    if (ms === undefined) {
      this.report(
        path,
        n,
        `must be an ISO 8601 date-time with a time zone, like "2026-06-04T00:00:00Z", got ${describe(n)}`,
      );
    }
    return ms;
  }

  oneOf<T extends string>(node: unknown, path: string, values: readonly T[]): T | undefined {
    const n = this.resolve(node);
    const v = isScalar(n) ? n.value : undefined;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      this.report(path, n, `must be one of ${values.join(' | ')}, got ${describe(n)}`);
      return undefined;
    }
    return v as T;
  }
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-](\d{2}):(\d{2}))$/;

export function parseDateTime(text: string): number | undefined {
  const m = DATE_TIME.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second = '0', offH = '0', offM = '0'] = m
    .slice(1)
    .map((x) => x ?? '0');
  const y = Number(year);
  const mo = Number(month);
  const d = Number(day);
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth) return undefined;
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) return undefined;
  if (Number(offH) > 23 || Number(offM) > 59) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

function describe(node: unknown): string {
  if (node === null || node === undefined) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'null';
    if (typeof v === 'string') return `"${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
    return `${typeof v} ${String(v)}`;
  }
  return 'an unsupported value';
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) {
      best = c;
      bestDist = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
