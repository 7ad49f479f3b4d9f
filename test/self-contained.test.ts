/**
 * The repository is self-contained: docs, code, tests and scripts never point a reader at a file outside it (a
 * design document they do not have, a sibling checkout). What users rely on is written in docs/.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './process-helpers.js';

const SKIP = new Set(['node_modules', 'dist', '.git', 'out', 'logs']);
const TEXT = /\.(ts|mjs|js|md|json|eta|css|service|conf|rules|example)$|^run$/;
// Built from parts so that this file does not match itself.
const OUTSIDE = new RegExp(['DESIGN' + '\\.md', '\\.\\./' + 'shared\\b', '/work/' + 'shared'].join('|'));

function textFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    if (SKIP.has(name)) return [];
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return textFiles(path);
    return TEXT.test(name) && name !== 'package-lock.json' ? [path] : [];
  });
}

describe('self-contained repository', () => {
  it('no file points outside the repository', () => {
    const files = textFiles(ROOT);
    expect(files.length).toBeGreaterThan(200);
    const hits = files.flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .flatMap((line, i) => (OUTSIDE.test(line) ? [`${relative(ROOT, f)}:${i + 1}: ${line.trim()}`] : [])),
    );
    expect(hits).toEqual([]);
  });
});
