import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../test/process-helpers.js';
import { VERSION } from './version.js';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

describe('VERSION', () => {
  it('is the version in package.json', () => {
    expect(VERSION).toBe(pkg.version);
  });

  it('is written nowhere else in the shipped code', () => {
    const literal = new RegExp(`['"\`]${pkg.version.replace(/\./g, '\\.')}['"\`]`);
    const offenders = ['protocol', 'lib', 'command-center', 'node-agent', 'cli'].flatMap((dir) =>
      readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
        .map((f) => join(dir, f))
        .filter((f) => literal.test(readFileSync(join(ROOT, f), 'utf8'))),
    );
    expect(offenders).toEqual([]);
  });
});
