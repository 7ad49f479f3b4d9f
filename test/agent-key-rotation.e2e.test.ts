/**
 * Agent key rotation with real vaultmesh-agent processes: `vaultmesh-agent rotate-key` while the agent is stopped,
 * the `rotate-key` command (`vaultmesh cmd send`) to a running daemon (which the subcommand refuses to race), and
 * recovery from a crash between writing the next key and swapping it in — before and after the center journaled
 * the rotation. The center runs with a zero overlap window, so a heartbeat accepted after a rotation proves the
 * agent signs with its new key.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readKeyFile } from '../lib/key-file.js';
import { writeFileAtomicSync } from '../lib/atomic-file.js';
import { generateKeyPair, privateKeyPem } from '../protocol/keys.js';
import { signRotation } from '../protocol/node-key-rotation.js';
import { startTestCenter, tempDir, testNode, type TestCenter } from './helpers.js';
import { AGENT_BIN, CLI_BIN, assertBuilt, runNode } from './process-helpers.js';

describe('vaultmesh-agent key rotation (real processes)', { timeout: 180_000 }, () => {
  const t = tempDir();
  let c: TestCenter;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    assertBuilt();
    c = await startTestCenter(t.dir, { nodeKeyOverlapSecs: 0 });
  });
  afterAll(async () => {
    for (const ch of children) ch.kill('SIGKILL');
    await c.close();
    t.cleanup();
  });

  const stateDir = (id: string) => join(t.dir, `agent-${id}`);
  const common = (id: string) => ['--cc-url', c.url, '--state-dir', stateDir(id), '--root', t.dir, '--node-id', id, '--os-profile', 'debian', '--cloudflared-check', 'none', '--settings', '/nonexistent'];
  const once = (id: string, env: Record<string, string> = {}) => runNode(AGENT_BIN, ['--once', ...common(id)], env);
  const keyFileId = (id: string) => readKeyFile(join(stateDir(id), 'node-key.pem')).keyId;
  const centerKeyId = async (id: string) => (await c.api('GET', `/api/nodes/${id}`)).json.key_id as string;
  const rotations = async (id: string) => (await c.api('GET', `/api/events?kind=node_key&node_id=${id}`)).json.items as Array<{ body: { old_key_id: string; new_key_id: string } }>;

  async function enrolled(id: string): Promise<void> {
    const tok = await c.api('POST', '/api/join-tokens', { uses: 1 });
    const first = await once(id, { VAULTMESH_JOIN_TOKEN: tok.json.token });
    expect(first.code, first.stderr).toBe(0);
    expect((await c.api('POST', `/api/nodes/${id}/approve`)).status).toBe(200);
    const second = await once(id);
    expect(second.stdout, second.stderr).toMatch(/heartbeat accepted/);
  }

  it('rotate-key while the agent is stopped: new key on disk and at the center, heartbeats signed by it', async () => {
    await enrolled('kr-stopped');
    const before = keyFileId('kr-stopped');
    const r = await runNode(AGENT_BIN, ['rotate-key', ...common('kr-stopped')]);
    expect(r.code, r.stderr).toBe(0);
    const after = keyFileId('kr-stopped');
    expect(after).not.toBe(before);
    expect(r.stdout).toContain(`key ${before} replaced by ${after}`);
    expect(statSync(join(stateDir('kr-stopped'), 'node-key.pem')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(stateDir('kr-stopped'), 'node-key.pem.pub'), 'utf8').trim()).toBe(readKeyFile(join(stateDir('kr-stopped'), 'node-key.pem')).publicKeyHex);
    expect(existsSync(join(stateDir('kr-stopped'), 'node-key.next.pem'))).toBe(false);
    expect(await centerKeyId('kr-stopped')).toBe(after);
    const hb = await once('kr-stopped');
    expect(hb.code, hb.stderr).toBe(0);
    expect(hb.stdout).toMatch(/heartbeat accepted/);
    expect((await c.api('GET', '/api/nodes/kr-stopped')).json.key_rotations).toEqual([expect.objectContaining({ old_key_id: before, new_key_id: after })]);
    const shown = await runNode(CLI_BIN, ['nodes', 'show', 'kr-stopped', '--cc-url', c.url, '--state-dir', join(t.dir, 'state')]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`key rotated\\s+\\S+: ${before} → ${after} \\(old key accepted until \\S+\\)`));
    expect(shown.stdout).toMatch(new RegExp(`key_id\\s+${after}`));
  });

  it('rotate-key --help explains itself; an agent that is not enrolled has nothing to rotate', async () => {
    const help = await runNode(AGENT_BIN, ['rotate-key', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/rotate-key/);
    expect(help.stdout).toMatch(/cmd send <node> rotate-key/);
    const fresh = await runNode(AGENT_BIN, ['rotate-key', ...common('kr-never')]);
    expect(fresh.code).toBe(1);
    expect(fresh.stderr).toMatch(/INVALID_STATE: node kr-never is not enrolled/);
    expect(existsSync(join(stateDir('kr-never'), 'node-key.next.pem'))).toBe(false);
  });

  it('a running daemon rotates on the rotate-key command; the subcommand refuses to race it; heartbeats continue with the new key', async () => {
    await enrolled('kr-live');
    const before = keyFileId('kr-live');
    const child = spawn(process.execPath, [AGENT_BIN, ...common('kr-live'), '--heartbeat-secs', '1', '--command-poll-secs', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (out += d));
    const waitFor = async (what: string, ok: () => boolean | Promise<boolean>, ms = 60_000) => {
      const until = Date.now() + ms;
      while (!(await ok())) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}; agent output:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await waitFor('the first heartbeat', async () => (await c.api('GET', '/api/nodes/kr-live')).json.heartbeat_count >= 2);

    const raced = await runNode(AGENT_BIN, ['rotate-key', ...common('kr-live')]);
    expect(raced.code).toBe(1);
    expect(raced.stderr).toMatch(/AGENT_LOCKED/);
    expect(raced.stderr).toContain('vaultmesh cmd send kr-live rotate-key');

    const sent = await runNode(CLI_BIN, ['cmd', 'send', 'kr-live', 'rotate-key', '--wait', '--timeout', '1m', '--json', '--cc-url', c.url, '--state-dir', join(t.dir, 'state')]);
    expect(sent.code, sent.stderr + out).toBe(0);
    const done = JSON.parse(sent.stdout);
    expect(done.receipt.payload.status).toBe('succeeded');
    const result = JSON.parse(done.receipt.payload.output);
    expect(result).toMatchObject({ old_key_id: before, rotated: true, resumed: false });
    expect(result.new_key_id).not.toBe(before);
    // The receipt itself was signed by the new key.
    expect(done.receipt.key_id).toBe(result.new_key_id);
    expect(await centerKeyId('kr-live')).toBe(result.new_key_id);
    expect(keyFileId('kr-live')).toBe(result.new_key_id);

    const count = (await c.api('GET', '/api/nodes/kr-live')).json.heartbeat_count as number;
    await waitFor('heartbeats after the rotation', async () => (await c.api('GET', '/api/nodes/kr-live')).json.heartbeat_count >= count + 2);
    expect(out).not.toMatch(/cycle failed/);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  });

  it('a crash after writing the next key, before asking the center: the next start finishes the rotation', async () => {
    await enrolled('kr-crash1');
    const before = keyFileId('kr-crash1');
    const next = generateKeyPair();
    writeFileAtomicSync(join(stateDir('kr-crash1'), 'node-key.next.pem'), privateKeyPem(next.seed), 0o600);
    const r = await once('kr-crash1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`resuming node key rotation ${before} → ${next.keyId}`);
    expect(r.stdout).toMatch(/heartbeat accepted/);
    expect(keyFileId('kr-crash1')).toBe(next.keyId);
    expect(await centerKeyId('kr-crash1')).toBe(next.keyId);
    expect(existsSync(join(stateDir('kr-crash1'), 'node-key.next.pem'))).toBe(false);
  });

  it('a crash after the center journaled the rotation, before the swap: the next start swaps (the old key is already refused)', async () => {
    await enrolled('kr-crash2');
    const dir = stateDir('kr-crash2');
    const old = readKeyFile(join(dir, 'node-key.pem'));
    const next = generateKeyPair();
    writeFileAtomicSync(join(dir, 'node-key.next.pem'), privateKeyPem(next.seed), 0o600);
    // What the agent had sent before it died.
    const sent = await testNode(c, 'kr-crash2', old).send('POST', '/api/agent/rotate-key', signRotation('kr-crash2', old, next, new Date()));
    expect(sent.status).toBe(200);
    const refused = await once('kr-crash2');
    expect(refused.code, refused.stderr).toBe(0);
    expect(refused.stdout).toMatch(/node key rotated: .* \(the center already had it\)/);
    expect(refused.stdout).toMatch(/heartbeat accepted/);
    expect(keyFileId('kr-crash2')).toBe(next.keyId);
    expect(await rotations('kr-crash2')).toHaveLength(1);
  });

  it('--rotate-key-every rotates on schedule in the daemon, and heartbeats carry on across the rotations', async () => {
    await enrolled('kr-sched');
    const child = spawn(process.execPath, [AGENT_BIN, ...common('kr-sched'), '--heartbeat-secs', '1', '--command-poll-secs', '2', '--rotate-key-every', '2s'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (out += d));
    const until = Date.now() + 60_000;
    let node = (await c.api('GET', '/api/nodes/kr-sched')).json;
    while (node.key_rotations.length < 2) {
      if (Date.now() > until) throw new Error(`no scheduled rotations; agent output:\n${out}`);
      await new Promise((r) => setTimeout(r, 200));
      node = (await c.api('GET', '/api/nodes/kr-sched')).json;
    }
    // Chained: each rotation starts from the key the one before installed.
    const [second, first] = node.key_rotations;
    expect(second.old_key_id).toBe(first.new_key_id);
    const count = node.heartbeat_count as number;
    const later = Date.now() + 60_000;
    while ((await c.api('GET', '/api/nodes/kr-sched')).json.heartbeat_count < count + 2) {
      if (Date.now() > later) throw new Error(`heartbeats stopped; agent output:\n${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    expect(keyFileId('kr-sched')).toBe((await c.api('GET', '/api/nodes/kr-sched')).json.key_id);
    expect(out).not.toMatch(/cycle failed|scheduled key rotation failed/);
  });
});
