/**
 * The target rule of the benchmark report (pure; tested in test/bench-targets.test.ts). A row may carry
 * `target`, a string `<op> <number> [unit]`:
 *
 *   op      ≥ or >= (at least), ≤ or <= (at most)
 *   number  a decimal, e.g. 0.30, 50, 1,000
 *   unit    optional. With a unit ('≤ 50 ms', '≤ 64 MB', '≤ 2 %') the target is checked against the row's `value`,
 *           and the unit must name the row's unit (compared case-insensitively on its first word, with KB = KiB and
 *           MB = MiB = MByte, since the modules report binary sizes). Without a unit, or with × / x ('≥ 0.30',
 *           '≤ 0.5×'), it is a bare ratio: checked against the row's `ratio` when the row has one, otherwise against
 *           `value` when the row's unit is itself a ratio (× or x).
 *
 * The mark is 'pass' or 'FAIL'; it is 'n/a' (with the reason) when the value is not a finite number, the units do
 * not match, or the target cannot be read. A row flagged `lower_bound` (the true figure is at least its value) can
 * only pass a ≥ target and fail a ≤ target (for a ratio: a ≤ target it meets is n/a, since it is only a bound).
 */

const OPS = { '≥': 'ge', '>=': 'ge', '≤': 'le', '<=': 'le' };
const RATIO_UNITS = new Set(['', '×', 'x']);

/** Parses a target string; undefined when it does not follow the rule above. */
export function parseTarget(target) {
  if (typeof target !== 'string') return undefined;
  const m = /^\s*(≥|>=|≤|<=)\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*(.*?)\s*$/.exec(target);
  if (!m) return undefined;
  const limit = Number(m[2].replace(/,/g, ''));
  if (!Number.isFinite(limit)) return undefined;
  const unit = m[3];
  return { op: OPS[m[1]], limit, unit, ratio: RATIO_UNITS.has(unit.toLowerCase()) };
}

/** A unit's comparable name: first word, lower case, binary and decimal byte prefixes folded together. */
export function unitKey(unit) {
  const first = String(unit ?? '').trim().split(/\s+/)[0].toLowerCase();
  return { kib: 'kb', mib: 'mb', gib: 'gb', mbyte: 'mb', '×': 'x' }[first] ?? first;
}

/**
 * Checks one row against its target: { mark: 'pass' | 'FAIL' | 'n/a', against: 'value' | 'ratio', reason? },
 * or undefined for a row without a target.
 */
export function checkTarget(row) {
  if (row?.target === undefined || row.target === '') return undefined;
  const t = parseTarget(row.target);
  if (!t) return { mark: 'n/a', reason: `target "${row.target}" is not "<≥|≤> number [unit]"` };
  let against;
  if (t.ratio) {
    if (typeof row.ratio === 'number') against = 'ratio';
    else if (RATIO_UNITS.has(unitKey(row.unit))) against = 'value';
    else return { mark: 'n/a', reason: 'a bare-ratio target on a row without a ratio' };
  } else {
    if (unitKey(t.unit) !== unitKey(row.unit)) return { mark: 'n/a', reason: `target unit "${t.unit}" is not the row's unit "${row.unit ?? ''}"` };
    against = 'value';
  }
  const x = row[against];
  if (typeof x !== 'number' || !Number.isFinite(x)) return { mark: 'n/a', against, reason: `${against} is not a number` };
  const met = t.op === 'ge' ? x >= t.limit : x <= t.limit;
  if (row.lower_bound) {
    // The real figure is x or more: a ≥ target met by the bound is met; a ≤ target missed by the bound is missed.
    if (t.op === 'ge') return { mark: met ? 'pass' : 'n/a', against, ...(met ? {} : { reason: 'only a lower bound' }) };
    return { mark: met ? 'n/a' : 'FAIL', against, ...(met ? { reason: 'only a lower bound' } : {}) };
  }
  return { mark: met ? 'pass' : 'FAIL', against };
}

/** The report's target cell: the target, then the mark (and what it was checked against when that was the ratio). */
export function targetCell(row) {
  const c = checkTarget(row);
  if (!c) return '';
  const on = c.against === 'ratio' ? ' (ratio)' : '';
  return `${row.target}${on}: ${c.mark}${c.reason ? ` (${c.reason})` : ''}`;
}
