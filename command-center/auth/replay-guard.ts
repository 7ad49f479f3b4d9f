/**
 * Remembers (node, nonce) pairs of signed agent requests for as long as their timestamps are acceptable, so a
 * captured request cannot be replayed inside the clock-skew window. Memory is bounded by the request rate times
 * the window (≈ 330 req/s × 10 min ≈ 200k entries at 10,000 nodes).
 */
export interface ReplayGuard {
  /** True the first time a (node, nonce) is seen; false for a replay. */
  remember(nodeId: string, nonce: string, nowMs: number): boolean;
  readonly size: number;
}

export function createReplayGuard(opts: { windowMs: number; maxEntries?: number }): ReplayGuard {
  const seen = new Map<string, number>(); // key → expiry ms, insertion-ordered ≈ expiry-ordered
  const max = opts.maxEntries ?? 2_000_000;
  // Entries stay for twice the skew window: a request stamped at now+skew stays acceptable until now+2·skew.
  const ttl = 2 * opts.windowMs;
  const prune = (nowMs: number) => {
    for (const [k, exp] of seen) {
      if (exp > nowMs && seen.size < max) break;
      seen.delete(k);
    }
  };
  return {
    remember(nodeId, nonce, nowMs) {
      const key = `${nodeId}\u0000${nonce}`;
      const exp = seen.get(key);
      if (exp !== undefined && exp > nowMs) return false;
      prune(nowMs);
      seen.set(key, nowMs + ttl);
      return true;
    },
    get size() {
      return seen.size;
    },
  };
}
