/**
 * Rendering for the CLI: aligned tables and records for people, JSON for scripts, errors; and `printOut`, the one
 * way a command writes to stdout. Everything printed goes through the terminal sanitiser (terminal-text.ts): a table
 * cell or a record value is one line with every control escaped, a block (receipt output) keeps its lines. JSON
 * escapes what a terminal would act on itself, so `--json` is safe on a terminal and unchanged for a parser.
 */
import { isVaultMeshError } from '../protocol/errors.js';
import { sanitize, terminalText } from './terminal-text.js';

export function renderTable(rows: Array<Record<string, unknown>>, columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => formatCell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map((c) => sanitize(c.toUpperCase()))), ...cells.map(line)].join('\n') + '\n';
}

/** `key   value` lines (`nodes show`, `cmd show`): keys padded to `width`, each value on one line. */
export function renderRecord(entries: Array<[string, unknown]>, width: number): string {
  const value = (v: unknown) => (v === null || v === undefined ? '-' : typeof v === 'object' ? sanitize(renderJsonLine(v)) : sanitize(String(v)));
  return entries.map(([k, v]) => `${sanitize(k).padEnd(width)} ${value(v)}`).join('\n') + '\n';
}

function formatCell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (Array.isArray(v)) return sanitize(v.map((x) => (typeof x === 'object' && x !== null ? renderJsonLine(x) : String(x))).join(',')) || '-';
  if (typeof v === 'object') return sanitize(renderJsonLine(v));
  return sanitize(String(v));
}

// JSON.stringify escapes C0 but writes DEL and C1 (U+0080–U+009F, 8-bit CSI/OSC) as they are.
const escapeC1 = (json: string) => json.replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

export function renderJson(value: unknown): string {
  return `${escapeC1(JSON.stringify(value, null, 2))}\n`;
}

/** One JSON value on one line (JSON Lines output, objects inside a table cell). */
export function renderJsonLine(value: unknown): string {
  return escapeC1(JSON.stringify(value));
}

/**
 * Writes to stdout through the sanitiser: lines and tabs stay, every other control is shown escaped. Output made by
 * the renderers above is already clean; this also covers the free-form lines commands build themselves.
 */
export function printOut(text: string, out: { write(s: string): unknown } = process.stdout): void {
  out.write(terminalText(text));
}

/**
 * How every CLI command reports a failure: `<prefix>: <message>`, then its hint, then its code (the registry's, as in
 * docs/API.md; usage errors carry a hint instead), and the exit code: 2 for usage errors, 1 for everything else.
 * Messages may quote the center's answer, so they are sanitised like output.
 */
export function renderCliError(prefix: string, err: unknown): { text: string; exitCode: 1 | 2 } {
  if (isVaultMeshError(err)) {
    const hint = err.details?.[0]?.hint;
    const usage = err.code === 'USAGE' || err.code === 'NO_TOKEN';
    const text = `${prefix}: ${terminalText(err.message)}\n${typeof hint === 'string' ? `  hint: ${terminalText(hint)}\n` : ''}${err.code === 'USAGE' ? '' : `  code: ${sanitize(err.code)}\n`}`;
    return { text, exitCode: usage ? 2 : 1 };
  }
  const e = err as NodeJS.ErrnoException;
  return { text: `${prefix}: ${e.code ? `${sanitize(e.code)}: ` : ''}${terminalText(e.message)}\n`, exitCode: 1 };
}
