/** Receipt reasons are a contract too: every one the agent can write is documented in docs/PROTOCOL.md. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { VERIFY_CODES } from '../protocol/command.js';
import { ACTION_FAILURE_REASONS } from './actions.js';

it('docs/PROTOCOL.md names every receipt reason (verification refusals and execution failures)', () => {
  const md = readFileSync(join(import.meta.dirname, '..', 'docs', 'PROTOCOL.md'), 'utf8');
  const missing = [...VERIFY_CODES, ...ACTION_FAILURE_REASONS].filter((r) => !md.includes(`\`${r}\``));
  expect(missing).toEqual([]);
});
