/**
 * Signed commands end to end: a real center (in-process, real port) and real `vaultmesh-agent` processes from
 * dist/ (build first: npx tsc -p tsconfig.json && node scripts/postbuild.mjs). Hand-made commands (tampered, wrong
 * key, OpenSSL-signed …) go through the center's real queue with `services.commands.enqueueSigned`, an in-process
 * API with no HTTP route; the agent process fetches them over its normal long-poll and must refuse or accept them.
 * The center's clock runs 2 minutes behind the agents' so that an already-expired command is still deliverable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { canonicalBytes } from '../protocol/canonical-json.js';
import { createCommandPayload, signCommand, verifyReceipt, type CommandPayload, type SignedCommand } from '../protocol/command.js';
import { generateKeyPair, keyIdOf } from '../protocol/keys.js';
import { startTestCenter, tempDir, type TestCenter } from './helpers.js';

const ROOT = resolve(import.meta.dirname, '..');
const AGENT = join(ROOT, 'dist/node-agent/main.js');
const CLI = join(ROOT, 'dist/cli/main.js');
const LAG_MS = 120_000;

let c: TestCenter;
let tmp: { dir: string; cleanup: () => void };
let opensslKeyPem: string;
let opensslPubHex: string;
const agents: Agent[] = [];

interface Agent {
  proc: ChildProcess;
  out: string[];
  stop(): Promise<void>;
  kill(): Promise<void>;
}

function startAgent(nodeId: string, extraEnv: Record<string, string> = {}, args: string[] = []): Agent {
  const stateDir = join(tmp.dir, `agent-${nodeId}`);
  const proc = spawn(process.execPath, [AGENT, ...args], {
    env: {
      PATH: process.env.PATH,
      VAULTMESH_SETTINGS: join(tmp.dir, 'no-such-agent.env'),
      VAULTMESH_CC_URL: c.url,
      VAULTMESH_STATE_DIR: stateDir,
      VAULTMESH_ROOT: tmp.dir,
      VAULTMESH_NODE_ID: nodeId,
      VAULTMESH_OS_PROFILE: 'debian',
      VAULTMESH_JOIN_TOKEN: joinToken,
      VAULTMESH_CLOUDFLARED_CHECK: 'none',
      VAULTMESH_HEARTBEAT_SECS: '2',
      VAULTMESH_COMMAND_POLL_SECS: '5',
      VAULTMESH_CC_PUBKEY: `${c.services.centerKey.publicKeyHex},${opensslPubHex}`,
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  proc.stdout!.on('data', (b) => out.push(String(b)));
  proc.stderr!.on('data', (b) => out.push(String(b)));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const agent: Agent = {
    proc,
    out,
    async stop() {
      proc.kill('SIGTERM');
      await exited;
    },
    async kill() {
      proc.kill('SIGKILL');
      await exited;
    },
  };
  agents.push(agent);
  return agent;
}

let joinToken = '';

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const show = async (id: string) => (await c.api('GET', `/api/commands/${id}`)).json;
const final = (id: string) => until(`a receipt for ${id}`, async () => ((await show(id)).receipt ? show(id) : undefined));

let seq = 0;
/** A command as the center would sign it, with the agents' (real) clock. */
function payload(over: Partial<CommandPayload> = {}): CommandPayload {
  const now = new Date();
  seq++;
  return {
    ...createCommandPayload({ id: `e2e-${seq}-${Date.now()}`, nodeId: 'e2e-01', action: 'ping', args: {}, nonce: Buffer.from(generateKeyPair().seed.subarray(0, 16)).toString('hex'), now, keyId: c.services.centerKey.keyId }),
    ...over,
  };
}
const inject = (signed: SignedCommand, nodeId = 'e2e-01') => c.services.commands!.enqueueSigned(signed, { author: 'test', nodeId });

function opensslSign(data: Buffer): string {
  const msg = join(tmp.dir, `msg-${seq}`);
  const sig = join(tmp.dir, `sig-${seq}`);
  writeFileSync(msg, data);
  execFileSync('openssl', ['pkeyutl', '-sign', '-inkey', opensslKeyPem, '-rawin', '-in', msg, '-out', sig]);
  return readFileSync(sig).toString('hex');
}

beforeAll(async () => {
  if (!existsSync(AGENT)) throw new Error('build dist first: npx tsc -p tsconfig.json && node scripts/postbuild.mjs');
  tmp = tempDir('vm-cmd-e2e-');
  opensslKeyPem = join(tmp.dir, 'offline-key.pem');
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', opensslKeyPem]);
  const der = execFileSync('openssl', ['pkey', '-in', opensslKeyPem, '-pubout', '-outform', 'DER']);
  opensslPubHex = der.subarray(der.length - 32).toString('hex');
  c = await startTestCenter(tmp.dir, { autoApprove: true, commandRedeliverSecs: 2, commandPollSecs: 5 }, { now: () => new Date(Date.now() - LAG_MS) });
  joinToken = (await c.api('POST', '/api/join-tokens', { uses: 10 })).json.token;
  startAgent('e2e-01');
  await until('e2e-01 enrolled', async () => ((await c.api('GET', '/api/nodes/e2e-01')).json?.heartbeat_count > 0 ? true : undefined));
}, 30_000);

afterAll(async () => {
  for (const a of agents) if (a.proc.exitCode === null && a.proc.signalCode === null) await a.kill();
  await c?.close();
  tmp?.cleanup();
});

describe('signed commands, real agent process + real center', () => {
  it('ping → signed receipt; the receipt verifies with the enrolled key, and with OpenSSL', async () => {
    const issued = await c.api('POST', '/api/commands', { node_id: 'e2e-01', action: 'ping' });
    expect(issued.status).toBe(201);
    const done = await final(issued.json.id);
    expect(done).toMatchObject({ status: 'succeeded', deliveries: 1, receipt: { payload: { status: 'succeeded', exit_code: 0, node_id: 'e2e-01' } } });
    expect(JSON.parse(done.receipt.payload.output)).toMatchObject({ pong: true, node_id: 'e2e-01' });
    const node = (await c.api('GET', '/api/nodes/e2e-01')).json;
    expect(verifyReceipt(done.receipt, node.public_key)).toBe(true);

    // OpenSSL: SPKI PEM from the raw key, the canonical payload bytes, the raw 64-byte signature.
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(node.public_key, 'hex')]);
    const pub = join(tmp.dir, 'node-pub.pem');
    writeFileSync(pub, `-----BEGIN PUBLIC KEY-----\n${spki.toString('base64')}\n-----END PUBLIC KEY-----\n`);
    writeFileSync(join(tmp.dir, 'receipt.json'), canonicalBytes(done.receipt.payload));
    writeFileSync(join(tmp.dir, 'receipt.sig'), Buffer.from(done.receipt.signature, 'hex'));
    const verify = (file: string) =>
      spawnSyncStatus('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', file, '-sigfile', join(tmp.dir, 'receipt.sig')]);
    expect(verify(join(tmp.dir, 'receipt.json'))).toMatchObject({ status: 0, out: expect.stringMatching(/Signature Verified Successfully/) });
    writeFileSync(join(tmp.dir, 'receipt-tampered.json'), canonicalBytes({ ...done.receipt.payload, status: 'failed' }));
    expect(verify(join(tmp.dir, 'receipt-tampered.json')).status).not.toBe(0);
  });

  it('a command signed by OpenSSL with a key the agent pins is accepted and run', async () => {
    const p = payload({ key_id: keyIdOf(opensslPubHex) });
    const signature = opensslSign(canonicalBytes(p));
    await inject({ payload: p, signature, key_id: p.key_id });
    expect(await final(p.id)).toMatchObject({ status: 'succeeded', receipt: { payload: { status: 'succeeded' } } });
  });

  it('refuses, with a signed rejected receipt and the reason code, every bad command', async () => {
    const key = c.services.centerKey;
    const stranger = generateKeyPair();
    const good = () => signCommand(payload(), key);
    const cases: Array<[string, SignedCommand, string, string?]> = [];
    { const s = good(); cases.push(['tampered payload', { ...s, payload: { ...s.payload, args: { note: 'x' } } }, 'BAD_SIGNATURE']); }
    { const s = good(); cases.push(['tampered signature', { ...s, signature: (s.signature[0] === 'a' ? 'b' : 'a') + s.signature.slice(1) }, 'BAD_SIGNATURE']); }
    { const p = payload({ key_id: stranger.keyId }); cases.push(['unpinned key', signCommand(p, stranger), 'UNKNOWN_KEY']); }
    { const p = payload(); cases.push(['wrong key claiming the center key_id', { payload: p, signature: signCommand(p, stranger).signature, key_id: key.keyId }, 'BAD_SIGNATURE']); }
    cases.push(['for another node', signCommand(payload({ node_id: 'e2e-02' }), key), 'WRONG_NODE']);
    {
      const t = Date.now();
      cases.push(['expired', signCommand(payload({ issued_at: new Date(t - 90_000).toISOString(), expires_at: new Date(t - 30_000).toISOString() }), key), 'EXPIRED', 'expired']);
      cases.push(['not yet valid', signCommand(payload({ issued_at: new Date(t + 600_000).toISOString(), expires_at: new Date(t + 900_000).toISOString() }), key), 'NOT_YET_VALID']);
    }
    for (const [, cmd] of cases) await inject(cmd);
    for (const [name, cmd, code, status] of cases) {
      const done = await final(cmd.payload.id);
      expect(done.receipt.payload, name).toMatchObject({ status: status ?? 'rejected', reason: code, exit_code: null });
      expect(done.status, name).toBe(status ?? 'rejected');
    }
  });

  it('action not allowed: the center refuses to sign (403 with the reason); the agent refuses what its local allowlist lacks', async () => {
    const denied = await c.api('POST', '/api/commands', { node_id: 'e2e-01', action: 'service-restart', args: { unit: 'sshd.service' } });
    expect(denied.status).toBe(403);
    expect(denied.json.error).toMatchObject({ code: 'POLICY_DENIED', message: expect.stringMatching(/sshd\.service/) });
    // Allowed by the center's policy for debian, but this agent has no VAULTMESH_RESTARTABLE_UNITS.
    const issued = await c.api('POST', '/api/commands', { node_id: 'e2e-01', action: 'service-restart', args: { unit: 'nginx.service' } });
    expect(issued.status).toBe(201);
    expect((await final(issued.json.id)).receipt.payload).toMatchObject({ status: 'rejected', reason: 'ACTION_NOT_ALLOWED' });
  });

  it('a replayed nonce is refused, also after the agent restarts', async () => {
    const first = signCommand(payload(), c.services.centerKey);
    await inject(first);
    expect((await final(first.payload.id)).status).toBe('succeeded');
    const replay = signCommand(payload({ nonce: first.payload.nonce }), c.services.centerKey);
    await inject(replay);
    expect((await final(replay.payload.id)).receipt.payload.reason).toBe('NONCE_REUSED');

    await agents[0]!.stop();
    const restarted = startAgent('e2e-01');
    agents[0] = restarted;
    const again = signCommand(payload({ nonce: first.payload.nonce }), c.services.centerKey);
    await inject(again);
    expect((await final(again.payload.id)).receipt.payload).toMatchObject({ status: 'rejected', reason: 'NONCE_REUSED' });
  });

  it('a command delivered to an agent that died before answering is redelivered after restart and runs once', async () => {
    const agent = agents[0]!;
    agent.proc.kill('SIGSTOP'); // its long-poll stays open; the response is written but never read
    const issued = await c.api('POST', '/api/commands', { node_id: 'e2e-01', action: 'ping' });
    await until('delivery', async () => ((await show(issued.json.id)).status === 'delivered' ? true : undefined), 10_000);
    await agent.kill();
    agents[0] = startAgent('e2e-01');
    const done = await final(issued.json.id);
    expect(done).toMatchObject({ status: 'succeeded' });
    expect(done.deliveries).toBeGreaterThanOrEqual(2);
  });

  it('vaultmesh cmd send --wait prints the receipt; cmd list shows it', async () => {
    const common = ['--cc-url', c.url, '--token', c.adminToken];
    const r = await run(CLI, ['cmd', 'send', 'e2e-01', 'ping', '--wait', '--json', ...common]);
    expect(r.code, r.err).toBe(0);
    const out = JSON.parse(r.out);
    expect(out).toMatchObject({ status: 'succeeded', receipt: { payload: { status: 'succeeded' } }, signed: { key_id: c.services.centerKey.keyId } });
    const text = await run(CLI, ['cmd', 'send', 'e2e-01', 'collect-journal', '--arg', 'unit=nope.service', '--arg', 'lines=5000', ...common]);
    expect(text.code).toBe(1);
    expect(text.err).toMatch(/lines/);
    const list = await run(CLI, ['cmd', 'list', '--node', 'e2e-01', ...common]);
    expect(list.out).toContain(out.id);
    const shown = await run(CLI, ['cmd', 'show', out.id, ...common]);
    expect(shown.out).toMatch(/receipt:\n.*succeeded/);
  });

  it('vaultmesh-agent --once also runs pending commands before exiting', async () => {
    expect((await run(AGENT, ['--once'], agentEnv('e2e-once'))).code).toBe(0); // enrolls (auto-approve)
    const issued = await c.api('POST', '/api/commands', { node_id: 'e2e-once', action: 'ping' });
    const r = await run(AGENT, ['--once'], agentEnv('e2e-once'));
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/handled 1 pending command/);
    expect((await show(issued.json.id)).status).toBe('succeeded');
  });
});

function agentEnv(nodeId: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    VAULTMESH_SETTINGS: join(tmp.dir, 'no-such-agent.env'),
    VAULTMESH_CC_URL: c.url,
    VAULTMESH_STATE_DIR: join(tmp.dir, `agent-${nodeId}`),
    VAULTMESH_ROOT: tmp.dir,
    VAULTMESH_NODE_ID: nodeId,
    VAULTMESH_OS_PROFILE: 'debian',
    VAULTMESH_JOIN_TOKEN: joinToken,
    VAULTMESH_CLOUDFLARED_CHECK: 'none',
    VAULTMESH_CC_PUBKEY: c.services.centerKey.publicKeyHex,
  };
}

function run(script: string, args: string[], env: Record<string, string> = { PATH: process.env.PATH ?? '' }): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (err += b));
    p.on('close', (code) => res({ code, out, err }));
  });
}

function spawnSyncStatus(cmd: string, args: string[]): { status: number; out: string } {
  try {
    return { status: 0, out: execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString() };
  } catch (err) {
    const e = err as { status?: number; stdout?: Buffer };
    return { status: e.status ?? 1, out: String(e.stdout ?? '') };
  }
}
