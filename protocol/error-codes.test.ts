/**
 * The error-code registry against its documentation (docs/API.md, "Error codes") and its use: the documented set
 * is the registry's, with the same statuses; every registered code is raised somewhere; merged old names are
 * documented and read as their new ones.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, isErrorCode, MERGED_CODES } from './error-codes.js';
import { parseApiAnswer, VaultMeshError } from './errors.js';

const root = join(import.meta.dirname, '..');

/** The rows of the "Error codes" table in docs/API.md: code → status (null for `—`). */
function documentedCodes(): Map<string, number | null> {
  const md = readFileSync(join(root, 'docs', 'API.md'), 'utf8');
  const start = md.indexOf('\n## Error codes\n');
  expect(start, 'docs/API.md has an "## Error codes" section').toBeGreaterThan(0);
  const section = md.slice(start + 1).split(/\n## /)[0]!;
  const rows = new Map<string, number | null>();
  for (const line of section.split('\n')) {
    const m = /^\| `([A-Z][A-Z0-9_]*)` \| (\d{3}|—) \| (.+) \|$/.exec(line);
    if (!m) continue;
    expect(rows.has(m[1]!), `${m[1]} is documented once`).toBe(false);
    expect(m[3]!.trim().length, `${m[1]} has a meaning`).toBeGreaterThan(10);
    rows.set(m[1]!, m[2] === '—' ? null : Number(m[2]));
  }
  return rows;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && name !== 'error-codes.ts') out.push(p);
  }
  return out;
}

describe('error-code registry', () => {
  it('docs/API.md lists exactly the registered codes, each with its status', () => {
    const documented = documentedCodes();
    const registered = new Map(Object.entries(ERROR_CODES));
    expect([...documented.keys()].sort()).toEqual([...registered.keys()].sort());
    for (const [code, status] of registered) expect(documented.get(code), code).toBe(status);
  });

  it('every registered code is raised somewhere in the programs', () => {
    const text = ['protocol', 'lib', 'command-center', 'node-agent', 'cli'].filter((d) => existsSync(join(root, d))).flatMap((d) => sourceFiles(join(root, d))).map((f) => readFileSync(f, 'utf8')).join('\n');
    const unused = Object.keys(ERROR_CODES).filter((code) => !text.includes(`'${code}'`));
    expect(unused).toEqual([]);
  });

  it('merged names are documented, gone from the registry, and read as their new code', () => {
    const md = readFileSync(join(root, 'docs', 'API.md'), 'utf8');
    for (const [old, current] of Object.entries(MERGED_CODES)) {
      expect(isErrorCode(old), old).toBe(false);
      expect(md, old).toContain(`\`${old}\``);
      const { error } = parseApiAnswer(503, JSON.stringify({ error: { code: old, message: 'm' } }));
      expect(error?.code, old).toBe(current);
      expect(error?.status).toBe(503); // the status received, whatever the registry says
    }
  });

  it('an error takes its status from the registry; the JSON format stays { error: { code, message, details } }', () => {
    const err = new VaultMeshError('NOT_FOUND', 'no such node', { details: [{ path: 'id', message: 'unknown' }] });
    expect(err.status).toBe(404);
    expect(err.toJSON()).toEqual({ error: { code: 'NOT_FOUND', message: 'no such node', details: [{ path: 'id', message: 'unknown' }] } });
    expect(new VaultMeshError('USAGE', 'bad flag').status).toBe(500); // local codes are never an answer; if one escapes, it is our fault
  });

  it('a client keeps the center code and status it received; an unknown code or no JSON error becomes HTTP_ERROR', () => {
    expect(parseApiAnswer(403, JSON.stringify({ error: { code: 'NODE_REVOKED', message: 'node x is revoked' } })).error).toMatchObject({ code: 'NODE_REVOKED', status: 403, message: 'node x is revoked' });
    expect(parseApiAnswer(409, JSON.stringify({ error: { code: 'SOMETHING_NEW', message: 'later release' } })).error).toMatchObject({ code: 'HTTP_ERROR', status: 409, message: 'SOMETHING_NEW: later release' });
    expect(parseApiAnswer(530, '<html>origin down</html>').error).toMatchObject({ code: 'HTTP_ERROR', status: 530, message: 'HTTP 530' });
    expect(parseApiAnswer(200, '{"ok":true}')).toEqual({ json: { ok: true } });
  });
});
