/**
 * Randomness for the censorship engine: a seedable generator (so tests and
 * validation runs are reproducible) and the log-normal latency model.
 */
export type Rng = () => number;

/** A uniform [0, 1) generator; seeded (sfc32) when `seed` is given, Math.random otherwise. */
export function createRng(seed?: number): Rng {
  if (seed === undefined) return Math.random;
  // sfc32, state spread from the seed with splitmix32.
  let s = seed >>> 0;
  const split = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split();
  let b = split();
  let c = split();
  let d = split();
  const next = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** z such that P(Z <= z) = 0.95 for a standard normal Z. */
const Z95 = 1.6448536269514722;

export interface LatencyModel {
  median: number;
  p95: number;
}

/**
 * Draw a latency (ms) from the log-normal whose median and 95th percentile are given:
 * mu = ln(median), sigma = ln(p95 / median) / z95. A zero median means no latency.
 */
export function sampleLatency(model: LatencyModel, rng: Rng): number {
  if (model.median <= 0) return 0;
  const mu = Math.log(model.median);
  const sigma = model.p95 > model.median ? Math.log(model.p95 / model.median) / Z95 : 0;
  if (sigma === 0) return model.median;
  // Box–Muller; 1 - u keeps the log argument in (0, 1].
  const u1 = 1 - rng();
  const u2 = rng();
  const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  return Math.exp(mu + sigma * z);
}
