/** Rendering for the CLI: aligned tables for people, JSON for scripts, errors. Pure; callers write the result. */
import { isVaultMeshError } from '../protocol/errors.js';

export function renderTable(rows: Array<Record<string, unknown>>, columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => formatCell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n') + '\n';
}

function formatCell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (Array.isArray(v)) return v.join(',') || '-';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function renderJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/**
 * How every CLI command reports a failure: `<prefix>: <message>`, then its hint, then its code (the registry's, as in
 * docs/API.md; usage errors carry a hint instead), and the exit code: 2 for usage errors, 1 for everything else.
 */
export function renderCliError(prefix: string, err: unknown): { text: string; exitCode: 1 | 2 } {
  if (isVaultMeshError(err)) {
    const hint = err.details?.[0]?.hint;
    const usage = err.code === 'USAGE' || err.code === 'NO_TOKEN';
    const text = `${prefix}: ${err.message}\n${typeof hint === 'string' ? `  hint: ${hint}\n` : ''}${err.code === 'USAGE' ? '' : `  code: ${err.code}\n`}`;
    return { text, exitCode: usage ? 2 : 1 };
  }
  const e = err as NodeJS.ErrnoException;
  return { text: `${prefix}: ${e.code ? `${e.code}: ` : ''}${e.message}\n`, exitCode: 1 };
}
