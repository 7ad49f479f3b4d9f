/** Small statistics helpers for benchmark figures. */

/** The q-quantile (0..1) of numbers, nearest-rank on a sorted copy; NaN for an empty list. */
export function quantile(xs, q) {
  if (!xs.length) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

export const median = (xs) => quantile(xs, 0.5);
export const round = (x, digits = 0) => (Number.isFinite(x) ? +x.toFixed(digits) : x);
export const ms = (t0) => performance.now() - t0;

/** A row for the aggregator: `ratio` = value / baseline unless given (for times, pass the inverse yourself). */
export function row(name, value, unit, extra = {}) {
  return { name, value, unit, ...extra };
}

/** Prints rows as a plain table (measure, value, baseline, ratio) when a module runs on its own. */
export function printTable(rows) {
  const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2));
  const lines = rows.map((r) => [r.name, `${fmt(r.value)} ${r.unit}`, r.baseline === undefined ? '' : `${fmt(r.baseline)} ${r.unit} (${r.baseline_name})`, r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}×`]);
  const head = ['measure', 'value', 'baseline', 'ratio'];
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  console.log([head, w.map((n) => '-'.repeat(n)), ...lines].map((l) => l.map((c, i) => c.padEnd(w[i])).join('  ')).join('\n'));
}

/**
 * The p99 of each set of samples (e.g. each round of heartbeats), in order: one overall p99 hides whether a few
 * slow sets or a slow steady state make it. NaN for an empty set.
 */
export function setsP99(sets) {
  return sets.map((xs) => quantile(xs, 0.99));
}
