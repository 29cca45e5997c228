/**
 * Corroboration (decision 012): how many independent probes gave a finding's evidence. Each
 * counted pair has a sender account and a recipient account, each held by a probe in an AS.
 * A probe can fake any pair it is on (a sender that never sends the test, a recipient that
 * never reports it), and probes in one AS are not counted as independent of each other. So
 * `independent` is the fewest ASes whose probes, together, are on every pair: the number of
 * networks that would all have to lie (a minimum vertex cover of the ASN graph whose edges are
 * the pairs; a pair within one AS needs that AS).
 */

export interface EvidencePath {
  senderProbeId: string;
  senderAsn: number;
  recipientProbeId: string;
  recipientAsn: number;
}

export interface Corroboration {
  /** Distinct probes holding a sender or recipient of the evidence. */
  probes: number;
  /** Distinct ASNs of those probes. */
  asns: number;
  /** Fewest ASNs on every pair (a lower bound when the graph is too large to search). */
  independent: number;
}

/** Subsets searched at one size before falling back to a lower bound. */
const SEARCH_LIMIT = 50_000;

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}

/** Pure: the corroboration of the evidence given by these pairs. */
export function corroboration(paths: readonly EvidencePath[]): Corroboration {
  const probes = new Set<string>();
  const asnSet = new Set<number>();
  const edges = new Map<string, [number, number]>();
  for (const p of paths) {
    probes.add(p.senderProbeId);
    probes.add(p.recipientProbeId);
    asnSet.add(p.senderAsn);
    asnSet.add(p.recipientAsn);
    const [a, b] =
      p.senderAsn <= p.recipientAsn ? [p.senderAsn, p.recipientAsn] : [p.recipientAsn, p.senderAsn];
    edges.set(`${a}:${b}`, [a, b]);
  }
  const asns = [...asnSet];
  return { probes: probes.size, asns: asns.length, independent: minimumCover(asns, [...edges.values()]) };
}

function minimumCover(vertices: number[], edges: [number, number][]): number {
  if (edges.length === 0) return 0;
  // ASes with a pair inside them must be in every cover.
  const forced = new Set(edges.filter(([a, b]) => a === b).map(([a]) => a));
  const rest = edges.filter(([a, b]) => !forced.has(a) && !forced.has(b));
  if (rest.length === 0) return forced.size;
  const free = vertices.filter((v) => !forced.has(v) && rest.some(([a, b]) => a === v || b === v));
  for (let k = 1; k <= free.length; k++) {
    if (binomial(free.length, k) > SEARCH_LIMIT) {
      // No cover of fewer than k was found: k is a lower bound; so is any matching's size.
      return forced.size + Math.max(k, greedyMatching(rest));
    }
    if (someCover(free, rest, k, 0, new Set())) return forced.size + k;
  }
  return forced.size + free.length;
}

function someCover(
  free: number[],
  edges: [number, number][],
  k: number,
  from: number,
  chosen: Set<number>,
): boolean {
  if (chosen.size === k) return edges.every(([a, b]) => chosen.has(a) || chosen.has(b));
  for (let i = from; i <= free.length - (k - chosen.size); i++) {
    const v = free[i] as number;
    chosen.add(v);
    if (someCover(free, edges, k, i + 1, chosen)) return true;
    chosen.delete(v);
  }
  return false;
}

function greedyMatching(edges: [number, number][]): number {
  const used = new Set<number>();
  let n = 0;
  for (const [a, b] of edges) {
    if (used.has(a) || used.has(b)) continue;
    used.add(a);
    used.add(b);
    n++;
  }
  return n;
}
