/**
 * Center key rotation end to end with real processes: `vaultmesh-cc`, `vaultmesh-agent` daemons and the `vaultmesh`
 * CLI (through the admin socket), all from dist/. A running agent takes the statement and runs a command signed by
 * the new key; an agent stopped during the rotation takes it on return and still runs a command queued before it
 * (signed by the old key, inside the overlap); a restart signs with the new key; the ledgers verify across the
 * rotation (the agents reach the restarted center through a fixed loopback proxy); the files a crash between the journal line and the key swap leaves start a consistent center; an agent
 * that comes back after the overlap of a rotation it missed says so clearly, and the center tells it too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyIdOf } from '../protocol/keys.js';
import { readKeyFile } from '../lib/key-file.js';
import { tempDir } from './helpers.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';
import { AGENT_BIN, CLI_BIN, runNode, spawnCenter, type CenterProcess } from './process-helpers.js';

const t = tempDir('vm-keyrot-');
const logDir = join(t.dir, 'logs');
const stateDir = join(t.dir, 'state');
const centerArgs = ['--log-dir', logDir, '--state-dir', stateDir, '--auto-approve', '--ledger-head-secs', '1', '--orchestrator-tick-secs', '0', '--heartbeat-secs', '1'];
let center: CenterProcess | undefined;
const agents: Array<{ proc: ChildProcess; out: () => string; stop(): Promise<void> }> = [];
let joinToken = '';

const token = () => readFileSync(join(stateDir, 'admin.token'), 'utf8').trim();
async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${center!.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token()}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: await res.json() };
}
const cli = (args: string[]) => runNode(CLI_BIN, [...args, '--state-dir', stateDir]);

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function startAgent(nodeId: string, env: Record<string, string> = {}) {
  const proc = spawn(process.execPath, [AGENT_BIN], {
    env: {
      PATH: process.env.PATH,
      VAULTMESH_SETTINGS: join(t.dir, 'no-such-agent.env'),
      VAULTMESH_CC_URL: `http://127.0.0.1:${proxy!.port}`,
      VAULTMESH_STATE_DIR: join(t.dir, `agent-${nodeId}`),
      VAULTMESH_ROOT: t.dir,
      VAULTMESH_NODE_ID: nodeId,
      VAULTMESH_OS_PROFILE: 'debian',
      VAULTMESH_JOIN_TOKEN: joinToken,
      VAULTMESH_CLOUDFLARED_CHECK: 'none',
      VAULTMESH_HEARTBEAT_SECS: '1',
      VAULTMESH_COMMAND_POLL_SECS: '2',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (b) => (out += String(b)));
  proc.stderr!.on('data', (b) => (out += String(b)));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const a = {
    proc,
    out: () => out,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
  agents.push(a);
  return a;
}
const agentState = (nodeId: string) => JSON.parse(readFileSync(join(t.dir, `agent-${nodeId}`, 'agent-state.json'), 'utf8'));

// The agents talk to the center through a fixed loopback port, so a restarted center (on a new port) is the same URL.
let proxy: TcpProxy | undefined;
async function startCenter(): Promise<void> {
  center = await spawnCenter(centerArgs);
  const port = Number(new URL(center.url).port);
  if (proxy) proxy.point(port);
  else proxy = await startTcpProxy(port);
}
async function stopCenter(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  center!.child.kill(signal);
  await center!.exited;
}

async function command(nodeId: string): Promise<string> {
  const r = await api('POST', '/api/commands', { node_id: nodeId, action: 'ping' });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json.id;
}
const outcome = (id: string) =>
  until(`the receipt of ${id}`, async () => {
    const c = (await api('GET', `/api/commands/${id}`)).json;
    return c.receipt ? c : undefined;
  });
const signerOf = async (id: string) => (await api('GET', `/api/commands/${id}`)).json.signed.payload.key_id as string;

const keyIds: string[] = [];

beforeAll(async () => {
  await startCenter();
  joinToken = (await api('POST', '/api/join-tokens', { uses: 10, ttl_secs: 3600 })).json.token;
  keyIds.push(readKeyFile(join(stateDir, 'cc-key.pem')).keyId);
}, 30_000);

afterAll(async () => {
  for (const a of agents) await a.stop();
  if (center && center.child.exitCode === null && center.child.signalCode === null) await stopCenter('SIGKILL');
  await proxy?.close();
  t.cleanup();
});

describe('center key rotation (real center, agents and CLI)', () => {
  it('rotates: a running agent takes the statement and runs a command signed by the new key; an agent away during it takes it on return and runs a command queued before it', { timeout: 90_000 }, async () => {
    const a = startAgent('rot-a');
    const b = startAgent('rot-b');
    const trustsFirst = (id: string) => existsSync(join(t.dir, `agent-${id}`, 'agent-state.json')) && agentState(id).tofu_center_keys.length > 0;
    await until('both agents trust the first key', () => (trustsFirst('rot-a') && trustsFirst('rot-b') ? true : undefined));
    await b.stop();
    const queued = await command('rot-b'); // signed by k0, waits for rot-b

    const rotated = await cli(['keys', 'rotate', '--overlap-secs', '600', '--json']);
    expect(rotated.code, rotated.stderr).toBe(0);
    const r = JSON.parse(rotated.stdout);
    expect(r.rotation.statement).toMatchObject({ serial: 1, old_key_id: keyIds[0] });
    keyIds.push(r.rotation.statement.new_key_id);
    // `keys show` keeps its shape; the state dir holds the new key only.
    const shown = await cli(['keys', 'show', '--json']);
    expect(JSON.parse(shown.stdout)).toEqual({ public_key: r.keys.public_key, key_id: keyIds[1] });
    expect(existsSync(join(stateDir, 'cc-key.next.pem'))).toBe(false);
    const history = JSON.parse((await cli(['keys', 'show', '--history', '--json'])).stdout);
    expect(history).toMatchObject({ key_id: keyIds[1], status: 'active', previous: [{ key_id: keyIds[0], in_overlap: true }], rotations: [{ seq: r.rotation.seq, statement: { serial: 1 } }] });
    // The event feed carries it.
    const events = (await api('GET', '/api/events?kind=center_key')).json;
    expect(JSON.stringify(events)).toContain(keyIds[1]);

    await until('rot-a takes the rotation', () => (agentState('rot-a').center_key_rotations.length === 1 ? true : undefined));
    // The line comes through the agent's stdout pipe, which can arrive after its state file is read here.
    const said = new RegExp(`center key rotated: now trusting ${keyIds[1]} \\(announced by ${keyIds[0]}`);
    await until('rot-a to say it took the rotation', () => (said.test(a.out()) ? true : undefined), 5_000);
    const fresh = await command('rot-a');
    expect(await signerOf(fresh)).toBe(keyIds[1]);
    expect(await outcome(fresh)).toMatchObject({ status: 'succeeded' });

    // rot-b returns: it learns the rotation, runs the command queued (and signed by k0) before it, and a new one.
    startAgent('rot-b');
    expect(await signerOf(queued)).toBe(keyIds[0]);
    expect(await outcome(queued)).toMatchObject({ status: 'succeeded' });
    await until('rot-b takes the rotation', () => (agentState('rot-b').center_key_rotations.length === 1 ? true : undefined));
    const after = await command('rot-b');
    expect(await signerOf(after)).toBe(keyIds[1]);
    expect(await outcome(after)).toMatchObject({ status: 'succeeded' });
  });

  it('after a restart the center signs with the new key, and the ledgers verify across the rotation', { timeout: 60_000 }, async () => {
    await stopCenter();
    await startCenter();
    const id = await command('rot-a');
    expect(await signerOf(id)).toBe(keyIds[1]);
    expect(await outcome(id)).toMatchObject({ status: 'succeeded' });
    // Wait for a head over the last receipt, then verify both logs' chains offline.
    await until('a signed head under the new key', () => {
      const chain = JSON.parse(readFileSync(join(logDir, 'COMMANDS_PROOFCHAIN.json'), 'utf8'));
      const heads = Array.isArray(chain) ? chain : chain.heads;
      return heads?.some((h: { head: { key_id: string } }) => h.head.key_id === keyIds[1]) && heads.some((h: { head: { key_id: string } }) => h.head.key_id === keyIds[0]) ? true : undefined;
    });
    const verify = await runNode(CLI_BIN, ['ledger', 'verify', '--dir', logDir, '--log', 'commands', '--allow-unsigned-tail']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const pubs = [readFileSync(join(stateDir, 'previous-keys'), 'utf8').split('\n').find((l) => /^[0-9a-f]{64}$/.test(l))!, readFileSync(join(stateDir, 'cc-key.pem.pub'), 'utf8').trim()];
    expect(pubs.map((p) => keyIdOf(p))).toEqual([keyIds[0], keyIds[1]]);
    const pinned = await runNode(CLI_BIN, ['ledger', 'verify', '--dir', logDir, '--log', 'commands', '--allow-unsigned-tail', '--pubkey', pubs.join(',')]);
    expect(pinned.code, pinned.stdout + pinned.stderr).toBe(0);
    const onlyOld = await runNode(CLI_BIN, ['ledger', 'verify', '--dir', logDir, '--log', 'commands', '--allow-unsigned-tail', '--pubkey', pubs[0]!]);
    expect(onlyOld.code).toBe(1);
  });

  it('a center killed between the journal line and the key swap starts with the announced key; an agent back after the overlap says clearly what it missed', { timeout: 90_000 }, async () => {
    for (const a of agents) await a.stop(); // rot-a must not see rotation #2 inside its (short) window
    const before = { key: readFileSync(join(stateDir, 'cc-key.pem')), pub: readFileSync(join(stateDir, 'cc-key.pem.pub')), prev: readFileSync(join(stateDir, 'previous-keys')) };
    const rotated = await cli(['keys', 'rotate', '--overlap-secs', '2', '--json']);
    expect(rotated.code, rotated.stderr).toBe(0);
    const statement = JSON.parse(rotated.stdout).rotation.statement;
    keyIds.push(statement.new_key_id);
    await stopCenter('SIGKILL');
    // The files as a kill -9 after the journal line and before the swap leaves them: the old key current, the new one next.
    copyFileSync(join(stateDir, 'cc-key.pem'), join(stateDir, 'cc-key.next.pem'));
    writeFileSync(join(stateDir, 'cc-key.pem'), before.key, { mode: 0o600 });
    writeFileSync(join(stateDir, 'cc-key.pem.pub'), before.pub);
    writeFileSync(join(stateDir, 'previous-keys'), before.prev);
    expect(readKeyFile(join(stateDir, 'cc-key.pem')).keyId).toBe(keyIds[1]);

    await startCenter();
    expect(JSON.parse((await cli(['keys', 'show', '--json'])).stdout).key_id).toBe(keyIds[2]);
    expect(readKeyFile(join(stateDir, 'cc-key.pem')).keyId).toBe(keyIds[2]);
    expect(existsSync(join(stateDir, 'cc-key.next.pem'))).toBe(false);
    expect(readFileSync(join(stateDir, 'previous-keys'), 'utf8')).toContain(before.pub.toString().trim());

    // rot-a trusts k0 and k1; rotation #2 (k1 → k2) ended its overlap while it was away.
    await until('the overlap of rotation #2 to end', () => (Date.now() > Date.parse(statement.overlap_until) + 500 ? true : undefined), 10_000);
    const a = startAgent('rot-a');
    await until('rot-a to name the missed rotation', () => (/CENTER_KEY_ROTATION_MISSED/.test(a.out()) ? true : undefined));
    expect(a.out()).toMatch(new RegExp(`from ${keyIds[1]} to ${keyIds[2]} at ${statement.effective_at.replace(/[.]/g, '\\.')}`));
    expect(a.out()).toContain(`VAULTMESH_CC_PUBKEY=${statement.new_public_key}`);
    expect(agentState('rot-a').center_key_rotations).toHaveLength(1);
    // The center sees it in the heartbeat and answers with the same words: shown on the node.
    const node = await until('the node to need attention for the missed rotation', async () => {
      const n = (await api('GET', '/api/nodes/rot-a')).json;
      return n.attention?.reasons?.some((r: { code: string }) => r.code === 'CENTER_KEY_ROTATION_MISSED') ? n : undefined;
    });
    expect(node.last_heartbeat.center_key_ids).toEqual([keyIds[0], keyIds[1]].sort());
    expect(node.attention.reasons.find((r: { code: string }) => r.code === 'CENTER_KEY_ROTATION_MISSED').message).toContain(`${keyIds[1]} → ${keyIds[2]}`);
    // The console shows the key and its rotations, the rotation in the event feed, and what the node trusts.
    const page = async (q: string) => (await fetch(`${center!.url}/console${q}`, { headers: { authorization: `Bearer ${token()}` } })).text();
    const overview = await page('');
    expect(overview).toContain('Center key');
    expect(overview).toMatch(new RegExp(`signing with <code>${keyIds[2]}</code>`));
    expect(overview).toMatch(new RegExp(`#2 <code>${keyIds[1]}</code> → <code>${keyIds[2]}</code>`));
    expect(overview).toContain(`center key rotated ${keyIds[1]} → ${keyIds[2]} (#2)`);
    const detail = await page('?node=rot-a');
    expect(detail).toContain('does not trust the current key');
    expect(detail).toContain('missed the center key rotation');
    // Its commands are refused for the key, not silently lost.
    const id = await command('rot-a');
    expect(await signerOf(id)).toBe(keyIds[2]);
    const refused = await outcome(id);
    expect(refused).toMatchObject({ status: 'rejected', receipt: { payload: { reason: 'UNKNOWN_KEY' } } });
    expect(refused.receipt.payload.output).toMatch(new RegExp(`not a pinned command-center key: CENTER_KEY_ROTATION_MISSED: .*from ${keyIds[1]} to ${keyIds[2]}`));
  });
});
