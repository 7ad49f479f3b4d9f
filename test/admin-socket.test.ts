/**
 * The local admin socket: a center behind Cloudflare Access refuses the CLI over TCP, while the same CLI on the
 * center's host gets through <state-dir>/admin.sock as the local admin (no token). The socket is 0600, replaced when
 * stale, removed on shutdown, and its identity cannot be had over TCP.
 */
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { createApp } from '../command-center/http/app.js';
import { cleanupAfterEach, composeTestCenter, startTestCenter, tempDir, testNode, type TestCenter } from './helpers.js';
import { CLI_BIN, assertBuilt, runNode } from './process-helpers.js';

const onCleanup = cleanupAfterEach();
const ACCESS = { cfAccessTeamDomain: 'vmtest', cfAccessAud: 'aud-0123456789abcdef', cfAccessCertsUrl: 'http://127.0.0.1:9/cdn-cgi/access/certs' };
/** No ambient settings from the environment running the tests. */
const CLEAN_ENV = { VAULTMESH_CC_URL: '', VAULTMESH_TOKEN: '', VAULTMESH_STATE_DIR: '', VAULTMESH_ADMIN_SOCKET: '', VAULTMESH_ADMIN_SOCKET_OFF: '' };

async function center(overrides: Record<string, unknown> = {}, dir?: string): Promise<TestCenter> {
  let d = dir;
  if (!d) {
    const t = tempDir('vm-sock-');
    onCleanup(t.cleanup);
    d = t.dir;
  }
  const c = await startTestCenter(d, { orchestratorTickSecs: 0, ...overrides });
  onCleanup(() => c.close());
  return c;
}

const cli = (args: string[], env: Record<string, string> = {}) => runNode(CLI_BIN, args, { ...CLEAN_ENV, ...env });

async function overSocket(path: string, urlPath: string, headers: Record<string, string> = {}) {
  const dispatcher = new Agent({ connect: { socketPath: path } });
  try {
    const res = await request(`http://localhost${urlPath}`, { headers, dispatcher });
    return { status: res.statusCode, json: (await res.body.json()) as any };
  } finally {
    await dispatcher.close();
  }
}

describe('local admin socket', () => {
  it('behind Access: the CLI over TCP is refused, over the socket it creates join tokens and approves nodes', async () => {
    assertBuilt();
    const c = await center(ACCESS);
    const stateDir = join(c.dir, 'state');
    expect(c.adminSocket).toBe(join(stateDir, 'admin.sock'));
    const st = lstatSync(c.adminSocket!);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);

    const tcp = await cli(['join-token', 'create', '--json', '--cc-url', c.url, '--token', c.adminToken]);
    expect(tcp.code).toBe(1);
    expect(tcp.stderr).toMatch(/401: .*Cf-Access-Jwt-Assertion header is required/);

    // Found under --state-dir, no token: the local admin.
    const created = await cli(['join-token', 'create', '--json', '--state-dir', stateDir]);
    expect(created.code, created.stderr).toBe(0);
    const { token } = JSON.parse(created.stdout) as { token: string };
    expect(token).toMatch(/^vmjoin_/);

    // The agent API is outside the Access gate: a node enrolls over TCP with that token.
    const node = testNode(c, 'web-01');
    const enrolled = await node.send('POST', '/api/agent/enroll', { token, node_id: 'web-01', hostname: 'web-01.example', os_profile: 'debian', public_key: node.key.publicKeyHex, agent_version: '0.1.0', facts: {} });
    expect(enrolled.status).toBeLessThan(300);

    // Named explicitly, wherever the CLI runs from.
    const approved = await cli(['nodes', 'approve', 'web-01', '--admin-socket', c.adminSocket!]);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toBe('web-01: approved\n');
    const list = await cli(['join-token', 'list', '--json'], { VAULTMESH_ADMIN_SOCKET: c.adminSocket! });
    expect(JSON.parse(list.stdout).map((t: { created_by: string }) => t.created_by)).toEqual(['local-admin']);
    const show = await overSocket(c.adminSocket!, '/api/nodes/web-01');
    expect([show.json.enrollment, show.json.decided_by]).toEqual(['approved', 'local-admin']);

    // --admin-socket-off (or its twin) goes over TCP even though the socket is there: refused by Access.
    for (const [args, env] of [[['--admin-socket-off'], {}], [[], { VAULTMESH_ADMIN_SOCKET_OFF: '1' }]] as const) {
      const off = await cli(['join-token', 'list', '--state-dir', stateDir, '--token', c.adminToken, ...args], { VAULTMESH_CC_URL: c.url, ...env });
      expect(off.code).toBe(1);
      expect(off.stderr).toMatch(/CF_ACCESS_REQUIRED/);
    }
    // An explicit URL wins over the socket found under the state dir.
    const byUrl = await cli(['join-token', 'list', '--state-dir', stateDir, '--cc-url', c.url]);
    expect(byUrl.stderr).toMatch(/CF_ACCESS_REQUIRED/);
    expect((await cli(['nodes', 'list', '--cc-url', c.url, '--admin-socket', c.adminSocket!])).code).toBe(2);
  });

  it('a TCP request can never be the local admin; on the socket it is, unless it presents a token of its own', async () => {
    const c = await center();
    const tcp = await request(`${c.url}/api/nodes`, { headers: { 'x-vaultmesh-local-admin': '1', forwarded: 'for=unix' } });
    expect(tcp.statusCode).toBe(401);
    await tcp.body.dump();
    const sock = await overSocket(c.adminSocket!, '/api/nodes');
    expect(sock.status).toBe(200);
    const dispatcher = new Agent({ connect: { socketPath: c.adminSocket! } });
    onCleanup(() => dispatcher.close());
    const post = await request('http://localhost/api/events', { method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'note', body: { text: 'from the socket' } }) });
    await post.body.dump();
    expect(post.statusCode).toBeLessThan(300);
    const notes = await c.api('GET', '/api/events?kind=note');
    expect(notes.json.items.at(-1).author).toBe('local-admin');
    // A wrong token on the socket is refused, not replaced by the socket's identity.
    const wrong = await overSocket(c.adminSocket!, '/api/nodes', { authorization: 'Bearer vmadmin_wrong' });
    expect(wrong.status).toBe(401);

    // In-process, bindings that merely look like the mark do not count.
    const composed = await composeTestCenter(join(c.dir, 'other'));
    onCleanup(() => composed.close());
    const app = createApp(composed.services);
    for (const bindings of [{ localAdmin: true, adminSocket: true, via: 'admin-socket' }, { [Symbol('vaultmesh.local-admin-connection')]: true }]) {
      const res = await app.request('/api/nodes', {}, bindings);
      expect(res.status).toBe(401);
    }
  });

  it('replaces a stale socket at start, removes it on shutdown, and is not offered with --admin-socket-off', async () => {
    const t = tempDir('vm-sock-');
    onCleanup(t.cleanup);
    const stateDir = join(t.dir, 'state');
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const path = join(stateDir, 'admin.sock');
    // A socket file left by a process killed while listening: nothing answers on it.
    const killed = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    await new Promise((r) => killed.once('exit', r));
    expect(lstatSync(path).isSocket()).toBe(true);

    const c = await startTestCenter(t.dir, { orchestratorTickSecs: 0 });
    expect(c.adminSocket).toBe(path);
    expect((await overSocket(path, '/api/nodes')).status).toBe(200);
    await c.close();
    expect(existsSync(path)).toBe(false);

    const off = await startTestCenter(t.dir, { orchestratorTickSecs: 0, adminSocketOff: true });
    onCleanup(() => off.close());
    expect(off.adminSocket).toBeNull();
    expect(existsSync(path)).toBe(false);
  });
});
