/**
 * Long work on the main thread gives the event loop a turn: the collector's HTTP server (and, in
 * an in-process network, the probes and the testbed) share the thread with the sweep, whose
 * judging and planning grow with the campaign (issue 12: no stall over 200 ms).
 *
 * `yielder(sliceMs)` returns a function to await between items of a loop: it resolves at once
 * until `sliceMs` passed since the last turn, then after a `setImmediate` (pending I/O runs first).
 */
export function yielder(sliceMs = 20): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < sliceMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    last = performance.now();
  };
}
