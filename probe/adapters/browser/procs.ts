/**
 * Reading Chromium's processes from /proc (Linux): which are still alive in a process
 * group, and their resident memory. Used by the tests (no orphans) and the bench.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcInfo {
  pid: number;
  ppid: number;
  pgrp: number;
  comm: string;
  rssKb: number;
}

function read(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm is in parentheses and may contain spaces: split after the last ')'.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const f = stat.slice(close + 2).split(' ');
    if (f[0] === 'Z') return undefined; // a zombie holds no memory and is not running
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+)/.exec(status)?.[1];
    return { pid, ppid: Number(f[1]), pgrp: Number(f[2]), comm, rssKb: rss ? Number(rss) : 0 };
  } catch {
    return undefined; // exited while we looked
  }
}

export function processes(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = read(Number(name));
    if (p) out.push(p);
  }
  return out;
}

/** Live processes in any of these process groups (Chromium leads its own group). */
export function inGroups(pgids: readonly number[]): ProcInfo[] {
  const set = new Set(pgids);
  return processes().filter((p) => set.has(p.pgrp));
}

/** Live descendants of `root` (children, grandchildren, …). */
export function descendants(root: number): ProcInfo[] {
  const all = processes();
  const out: ProcInfo[] = [];
  const frontier = [root];
  while (frontier.length) {
    const parent = frontier.pop();
    for (const p of all) {
      if (p.ppid === parent) {
        out.push(p);
        frontier.push(p.pid);
      }
    }
  }
  return out;
}

/** Resident memory of this process, in kB. */
export function selfRssKb(): number {
  return read(process.pid)?.rssKb ?? 0;
}

/** Proportional set size of a process in kB (shared pages split among sharers); 0 if unknown. */
export function pssKb(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    return Number(/^Pss:\s+(\d+)/m.exec(text)?.[1] ?? 0);
  } catch {
    return 0;
  }
}
