/**
 * What a local run writes next to the checkout must never be committed by `git add .`: the admin token, the
 * center's private key, the demo agents' keys. `git check-ignore` answers from the rules alone, files or not.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from './process-helpers.js';

const ignored = (path: string) => spawnSync('git', ['check-ignore', '-q', '--no-index', path], { cwd: ROOT }).status === 0;

describe('.gitignore', () => {
  it.each([
    'state/admin.token',
    'state/cc-key.pem',
    'state/cc-key.pem.pub',
    'state/webhook.secret',
    'state/api-token-usage.json',
    'state/.lock',
    'state/demo-agents/demo-web-01/node-key.pem',
    'state/demo-agents/demo-web-01/agent-state.json',
    'demo/state/admin.token',
    'demo/logs/events.jsonl',
    'logs/events.jsonl',
    'logs/.lock',
    'cc-key.new.pem',
  ])('ignores %s', (path) => {
    expect(ignored(path)).toBe(true);
  });

  it.each(['command-center/center.ts', 'command-center/demo.ts', 'node-agent/agent-state.ts', 'logs/.gitkeep', 'docs/OPERATIONS.md'])('keeps %s', (path) => {
    expect(ignored(path)).toBe(false);
  });
});
