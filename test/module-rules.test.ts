/**
 * Module rules, checked on the import graph of the shipped code (every .ts file except tests):
 * - `protocol/` is the wire contract third parties use: it imports only itself (and npm packages).
 * - `lib/` is what the programs share (sd-notify, atomic files, key files, timers, the logger, VERSION, the journal
 *   module, ledger file reads): protocol/ and itself.
 * - `node-agent/` never imports `command-center/` or `cli/`; `command-center/` never imports `cli/` or `node-agent/`
 *   (the demo starts agents by their bin, dist/node-agent/main.js, as child processes).
 * - `cli/` never imports `node-agent/` or `command-center/`: it reads journals offline through the journal module
 *   (lib/journal/) and ledger files through protocol/ledger-files.ts, as the center does.
 * - The journal module is entered only through `lib/journal/index.ts`: file names, segments, line splitting, merge,
 *   seek and the follower stay one module for the center and the CLI alike.
 * - In the center, only the store (`command-center/store/`) touches journals: the append path, replay and the
 *   journal module are private to it, so routes, state, the event log and the ledgers go through `EnvelopeStore`.
 * Tests (`*.test.ts`, test/) are exempt: they drive several programs at once on purpose.
 * Specifiers come from the TypeScript compiler's own pre-processor, so `import type`, `export … from` and dynamic
 * `import()` all count.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from './process-helpers.js';

const ALLOWED: Record<string, readonly string[]> = {
  protocol: ['protocol'],
  lib: ['lib', 'protocol'],
  'node-agent': ['node-agent', 'lib', 'protocol'],
  'command-center': ['command-center', 'lib', 'protocol'],
  cli: ['cli', 'lib', 'protocol'],
};

/** Folders that are one module: outside them, only their entry file may be imported. */
const ENTRY_ONLY: Record<string, string> = { 'lib/journal': 'lib/journal/index.ts' };

/** Modules only some folders may import (path prefix of the target → importer prefixes). */
const PRIVATE_TO: Record<string, readonly string[]> = {
  'command-center/store/journal.ts': ['command-center/store/'],
  'command-center/store/replay.ts': ['command-center/store/'],
  'lib/journal/': ['lib/', 'cli/', 'command-center/store/'],
};

export interface Violation {
  file: string;
  line: number;
  specifier: string;
  reason: string;
}

/** The relative import/export-from specifiers of one source text, with 1-based line numbers. */
export function importsOf(source: string): { specifier: string; line: number }[] {
  const info = ts.preProcessFile(source, true, true);
  return info.importedFiles.map((f) => ({ specifier: f.fileName, line: source.slice(0, f.pos).split('\n').length }));
}

/** Violations of ALLOWED for files given as repo-relative paths (posix separators) with their text. */
export function moduleViolations(files: { path: string; text: string }[]): Violation[] {
  const out: Violation[] = [];
  for (const { path, text } of files) {
    const from = path.split('/')[0]!;
    const allowed = ALLOWED[from];
    if (!allowed) continue;
    for (const { specifier, line } of importsOf(text)) {
      if (!specifier.startsWith('.')) continue; // npm packages and node: builtins
      const target = relative(ROOT, resolve(ROOT, dirname(path), specifier)).split(sep).join('/');
      const to = target.split('/')[0]!;
      if (target.startsWith('..')) out.push({ file: path, line, specifier, reason: 'points outside the repository' });
      else if (!allowed.includes(to)) out.push({ file: path, line, specifier, reason: `${from}/ may import only ${allowed.join('/, ')}/` });
      else {
        const file = target.replace(/\.js$/, '.ts');
        for (const [prefix, importers] of Object.entries(PRIVATE_TO)) {
          if (file.startsWith(prefix) && !importers.some((i) => path.startsWith(i))) {
            out.push({ file: path, line, specifier, reason: `${prefix} is private to ${importers.join(', ')}: go through EnvelopeStore` });
          }
        }
        for (const [folder, entry] of Object.entries(ENTRY_ONLY)) {
          const inside = (p: string) => p.startsWith(`${folder}/`);
          if (inside(target) && !inside(path) && target.replace(/\.js$/, '.ts') !== entry) {
            out.push({ file: path, line, specifier, reason: `${folder}/ is one module: import ${entry.replace(/\.ts$/, '.js')}` });
          }
        }
      }
    }
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  if (!existsSync(join(ROOT, dir))) return [];
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)).split(sep).join('/'));
}

const format = (v: Violation) => `${v.file}:${v.line} imports '${v.specifier}': ${v.reason}`;

describe('module rules', () => {
  it.each([
    ['node-agent/main.ts', "import { createSdNotifier } from '../command-center/sd-notify.js';", 1],
    ['command-center/demo.ts', "const m = await import('../node-agent/agent.js');", 1],
    ['command-center/x.ts', "export { ledgerVerify } from '../cli/ledger.js';", 1],
    ['cli/main.ts', "import type { Outbox } from '../node-agent/outbox.js';", 1],
    ['protocol/keys.ts', "import { writeFileAtomicSync } from '../lib/atomic-file.js';", 1],
    ['protocol/envelope.ts', "import type { Journal } from '../command-center/store/journal.js';", 1],
    ['lib/logger.ts', "import { startCenter } from '../command-center/center.js';", 1],
    ['cli/logs/view.ts', "import { x } from '../../../elsewhere/thing.js';", 1],
    ['cli/ledger.ts', "import { LineSource } from '../command-center/store/journal-reader.js';", 1],
    ['cli/ledger.ts', "import type { Ledger } from '../command-center/ledger/ledger.js';", 1],
    ['cli/ledger.ts', "import { LineSource } from '../lib/journal/index.js';\nimport { z } from 'zod';", 0],
    ['cli/logs/tail.ts', "import { splitLines } from '../../lib/journal/follow.js';", 1],
    ['command-center/store/replay.ts', "import { mergeJournals } from '../../lib/journal/reader.js';", 1],
    ['lib/journal/seek.ts', "import { parseJournalLine } from './reader.js';", 0],
    ['command-center/ledger/ledger.ts', "import { LineSource } from '../../lib/journal/index.js';", 1],
    ['command-center/routes/events.ts', "import { openJournal } from '../store/journal.js';", 1],
    ['command-center/center.ts', "import { replayJournals } from './store/replay.js';", 1],
    ['command-center/center.ts', "import { createJsonlStore } from './store/jsonl-store.js';", 0],
    ['command-center/store/jsonl-store.ts', "import { seekJournal } from '../../lib/journal/index.js';", 0],
    ['node-agent/main.ts', "import { createSdNotifier } from '../lib/sd-notify.js';\nimport { join } from 'node:path';", 0],
    ['command-center/demo.ts', "const AGENT = resolve(here, '../../node-agent/main.js'); // a path, not an import", 0],
  ])('%s: %s → %i violation(s)', (path, text, count) => {
    expect(moduleViolations([{ path, text }])).toHaveLength(count);
  });

  it('reports the file, line and import', () => {
    const [v] = moduleViolations([{ path: 'node-agent/main.ts', text: "import a from 'cac';\n\nimport { b } from '../cli/output.js';" }]);
    expect(v && format(v)).toBe("node-agent/main.ts:3 imports '../cli/output.js': node-agent/ may import only node-agent/, lib/, protocol/");
  });

  it('the shipped code follows them', () => {
    const files = Object.keys(ALLOWED).flatMap(sourceFiles);
    expect(files.length).toBeGreaterThan(100);
    expect(files).toContain('node-agent/main.ts');
    const violations = moduleViolations(files.map((path) => ({ path, text: readFileSync(join(ROOT, path), 'utf8') })));
    expect(violations.map(format)).toEqual([]);
  });

  it('the programs never load @noble/ed25519: only the portable backend imports it, and nothing shipped imports that', () => {
    const importers = (pred: (specifier: string) => boolean) =>
      Object.keys(ALLOWED)
        .flatMap(sourceFiles)
        .filter((path) => importsOf(readFileSync(join(ROOT, path), 'utf8')).some((i) => pred(i.specifier)));
    expect(importers((s) => s === '@noble/ed25519')).toEqual(['protocol/ed25519-noble.ts']);
    expect(importers((s) => s.endsWith('/ed25519-noble.js'))).toEqual([]);
  });

  it('the compiler builds lib/ beside the programs, so the bins keep their dist paths', () => {
    const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { include: string[] };
    for (const dir of Object.keys(ALLOWED)) expect(tsconfig.include).toContain(`${dir}/**/*.ts`);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(Object.values(pkg.bin).sort()).toEqual(['dist/cli/main.js', 'dist/command-center/main.js', 'dist/node-agent/main.js']);
  });
});
