/**
 * One center per log dir and per state dir, with real processes: a second `vaultmesh-cc` on the same dirs exits 1
 * with one line naming the holder's pid and leaves every file as it was; after a kill -9 of the holder (no clean-up
 * at all) a new center starts at once.
 */
import { appendFileSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';
import { CC_BIN, runNode, spawnCenter } from './process-helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** Every file under `dir` with its bytes and mode, for a byte-for-byte comparison. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isFile()) out[name] = `${(st.mode & 0o777).toString(8)} ${readFileSync(p).toString('base64')}`;
  }
  return out;
}

describe('one center per log dir and state dir', () => {
  it('refuses a second center on either dir with the holder’s pid, touches nothing, and survives a kill -9 of the holder', { timeout: 60_000 }, async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const logDir = join(t.dir, 'logs');
    const stateDir = join(t.dir, 'state');
    const dirs = ['--log-dir', logDir, '--state-dir', stateDir, '--ledger-head-secs', '3600', '--orchestrator-tick-secs', '0'];
    const first = await spawnCenter(dirs);
    cleanups.push(() => first.child.kill('SIGKILL'));
    // Something in the journal, so a second writer would have a seq to collide with.
    const token = readFileSync(join(stateDir, 'admin.token'), 'utf8').trim();
    const res = await fetch(`${first.url}/api/join-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ uses: 1, ttl_secs: 600 }),
    });
    expect(res.status).toBe(201);
    // A torn last line, as a crash mid-write leaves it: a second center must not move it aside (replay would).
    appendFileSync(join(logDir, 'events.jsonl'), '{"torn');
    const logsBefore = snapshot(logDir);
    const stateBefore = snapshot(stateDir);
    expect(Object.keys(logsBefore)).toContain('events.jsonl');

    const second = await runNode(CC_BIN, ['--port', '0', ...dirs], {}, 15_000);
    expect(second.code).toBe(1);
    const lines = second.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^vaultmesh-cc: CENTER_LOCKED: the log dir \\S*logs is in use by another center \\(pid ${first.child.pid}\\); stop it first`));
    expect(second.stdout).toBe('');

    // The state dir alone is locked too: another log dir does not make sharing the key and token safe.
    const other = await runNode(CC_BIN, ['--port', '0', '--log-dir', join(t.dir, 'other-logs'), '--state-dir', stateDir], {}, 15_000);
    expect(other.code).toBe(1);
    expect(other.stderr.trim()).toMatch(new RegExp(`^vaultmesh-cc: CENTER_LOCKED: the state dir \\S*state is in use by another center \\(pid ${first.child.pid}\\); stop it first[^\\n]*$`));

    expect(snapshot(logDir)).toEqual(logsBefore);
    expect(snapshot(stateDir)).toEqual(stateBefore);

    // kill -9: nothing is cleaned up, the kernel drops the lock with the process.
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe(null);
    const third = await spawnCenter(dirs);
    cleanups.push(() => third.child.kill('SIGKILL'));
    expect(third.output()).toMatch(/torn last line \(6 bytes/);
    const r = await fetch(`${third.url}/api/join-tokens`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    third.child.kill('SIGTERM');
    expect(await third.exited).toBe(0);
  });
});
