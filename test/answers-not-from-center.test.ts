// The CLI and the agent behind Cloudflare Access (or pointed at the wrong URL) get answers that are not the
// center's: a 302 to the Access login, an HTML page. They must say what came back and exit non-zero, never crash.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAfterEach, tempDir } from './helpers.js';
import { AGENT_BIN, CLI_BIN, assertBuilt, runNode } from './process-helpers.js';

const onCleanup = cleanupAfterEach();
const LOGIN = 'https://acme.cloudflareaccess.com/cdn-cgi/access/login/cc.example.com?kid=abc';
let accessUrl = '';
let htmlUrl = '';
let wrongShapeUrl = '';
let forgedKeysUrl = '';
let echoUrl = '';
const seenHeaders: Array<Record<string, unknown>> = [];
const servers: Server[] = [];

async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  assertBuilt();
  accessUrl = await serve((req, res) => res.writeHead(302, { location: LOGIN }).end());
  htmlUrl = await serve((req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Sign in</body></html>'));
  // JSON, but not the shape the CLI expects (an object where a list should be).
  // Stands in for Cloudflare Access in front of the center: records the headers, answers an empty node list.
  echoUrl = await serve((req, res) => {
    seenHeaders.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
  });
  // A heartbeat answer whose center key does not match its key id (a tampering proxy): nothing may be pinned.
  forgedKeysUrl = await serve((req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, seq: 1, center_keys: [{ public_key: 'ab'.repeat(32), key_id: '0123456789abcdef' }] })),
  );
  wrongShapeUrl = await serve((req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"items":"nope"}'));
});
afterAll(() => {
  for (const s of servers) s.close();
});

const cli = (url: string, args: string[]) => runNode(CLI_BIN, [...args, '--cc-url', url, '--token', 'vmadmin_test']);
const LISTS = [['nodes', 'list'], ['nodes', 'list', '--json'], ['join-token', 'list'], ['cmd', 'list'], ['events', 'list'], ['tokens', 'list']];

describe('answers that are not from the center', () => {
  it('the CLI names a redirect to Cloudflare Access and exits 1, on every list command', async () => {
    for (const args of LISTS) {
      const r = await cli(accessUrl, args);
      const what = args.join(' ');
      expect(r.code, `${what}: ${r.stderr}`).toBe(1);
      expect(r.stdout, what).toBe('');
      expect(r.stderr, what).toContain(`302 redirect to ${LOGIN}`);
      expect(r.stderr, what).toMatch(/did not pass Cloudflare Access.*service token/);
      expect(r.stderr, what).not.toMatch(/TypeError|at .*\.js:\d+/);
      // One message line, then the code line every CLI error ends with.
      expect(r.stderr.trim().split('\n'), what).toEqual([expect.stringContaining('302 redirect to'), '  code: NOT_FROM_CENTER']);
    }
  });

  it('the CLI refuses an HTML page and a JSON answer of the wrong shape', async () => {
    for (const args of LISTS) {
      const html = await cli(htmlUrl, args);
      expect(html.code, args.join(' ')).toBe(1);
      expect(html.stderr).toMatch(/answered 200 with text\/html that is not the command center's JSON/);
      const wrong = await cli(wrongShapeUrl, args);
      expect(wrong.code, `${args.join(' ')}: ${wrong.stdout}${wrong.stderr}`).toBe(1);
      expect(wrong.stdout).toBe('');
      expect(wrong.stderr).toMatch(/unexpected answer/);
      expect(wrong.stderr).not.toMatch(/TypeError/);
    }
  });

  it('vaultmesh-agent --once says what came back and exits non-zero', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const r = await runNode(AGENT_BIN, ['--once', '--cc-url', accessUrl, '--state-dir', join(t.dir, 'agent'), '--root', t.dir, '--node-id', 'n1', '--cloudflared-check', 'none', '--settings', '/nonexistent'], { VAULTMESH_JOIN_TOKEN: 'vmjoin_xxxxxxxxxxxxxxxxxxxx' });
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain(`302 redirect to ${LOGIN}`);
    expect(r.stdout + r.stderr).not.toMatch(/TypeError/);
  });

  it('the agent refuses center keys that do not match their ids and stores nothing', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const stateDir = join(t.dir, 'agent');
    const r = await runNode(AGENT_BIN, ['--once', '--cc-url', forgedKeysUrl, '--state-dir', stateDir, '--root', t.dir, '--node-id', 'n1', '--cloudflared-check', 'none', '--settings', '/nonexistent']);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/center key 0123456789abcdef does not match its public key\); nothing stored/);
    const state = existsSync(join(stateDir, 'agent-state.json')) ? readFileSync(join(stateDir, 'agent-state.json'), 'utf8') : '';
    expect(state).not.toContain('ab'.repeat(32));
  });

  it('the CLI sends an Access service token from the environment or a 0600 file, and refuses a readable file', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const secretFile = join(t.dir, 'cf-secret');
    writeFileSync(secretFile, 'file-secret\n', { mode: 0o600 });
    const fromEnv = await runNode(CLI_BIN, ['nodes', 'list', '--json', '--cc-url', echoUrl, '--token', 'vmadmin_x'], { VAULTMESH_CF_ACCESS_CLIENT_ID: 'id.access', VAULTMESH_CF_ACCESS_CLIENT_SECRET: 'env-secret' });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(seenHeaders.at(-1)).toMatchObject({ 'cf-access-client-id': 'id.access', 'cf-access-client-secret': 'env-secret', authorization: 'Bearer vmadmin_x' });
    const fromFile = await runNode(CLI_BIN, ['nodes', 'list', '--json', '--cc-url', echoUrl, '--token', 'vmadmin_x'], { VAULTMESH_CF_ACCESS_CLIENT_ID: 'id.access', VAULTMESH_CF_ACCESS_CLIENT_SECRET_FILE: secretFile });
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(seenHeaders.at(-1)).toMatchObject({ 'cf-access-client-secret': 'file-secret' });
    chmodSync(secretFile, 0o644);
    const before = seenHeaders.length;
    const readable = await runNode(CLI_BIN, ['nodes', 'list', '--cc-url', echoUrl, '--token', 'vmadmin_x'], { VAULTMESH_CF_ACCESS_CLIENT_ID: 'id.access', VAULTMESH_CF_ACCESS_CLIENT_SECRET_FILE: secretFile });
    expect(readable.code).toBe(2);
    expect(readable.stderr).toMatch(/chmod 600/);
    expect(seenHeaders.length).toBe(before); // nothing was sent
  });

  it('a wrong scheme or URL gets one plain line naming the setting', async () => {
    const tls = await cli(echoUrl.replace('http://', 'https://'), ['nodes', 'list']);
    expect(tls.code).toBe(1);
    expect(tls.stderr).toMatch(/does not answer TLS \(is it an http:\/\/ port\?\): use http:\/\//);
    expect(tls.stderr).not.toMatch(/ssl3_get_record|openssl/);
    const scheme = await cli('ftp://cc.example.com', ['nodes', 'list']);
    expect(scheme.code).toBe(2);
    expect(scheme.stderr).toMatch(/--cc-url \/ VAULTMESH_CC_URL must be an http:\/\/ or https:\/\/ URL/);
    const agent = await runNode(AGENT_BIN, ['--once', '--cc-url', 'ftp://cc.example.com']);
    expect(agent.code).not.toBe(0);
    expect(agent.stderr).toMatch(/invalid setting --cc-url \/ VAULTMESH_CC_URL/);
  });
});
