import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { startTestCenter, tempDir, type TestCenter, cleanupAfterEach } from '../../test/helpers.js';
import { applyApiTokenEnvelope, createApiTokenState, createApiTokenUsage, tokenStatus } from './api-tokens.js';

const onCleanup = cleanupAfterEach();

async function center(dir?: string, opts: { now?: () => Date } = {}): Promise<TestCenter> {
  let d = dir;
  if (!d) {
    const t = tempDir();
    onCleanup(t.cleanup);
    d = t.dir;
  }
  const c = await startTestCenter(d, {}, opts);
  onCleanup(() => c.close());
  return c;
}

async function call(c: { url: string }, token: string, method: string, path: string, body?: unknown) {
  const res = await request(c.url + path, {
    method: method as 'GET',
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? JSON.parse(text) : undefined };
}

describe('scoped API tokens', () => {
  it('creates a token shown once, stores only its hash, and checks scopes per route', async () => {
    const c = await center();
    const created = await c.api('POST', '/api/tokens', { name: 'ci-bot', scopes: ['events:write', 'nodes:read'] });
    expect(created.status).toBe(201);
    expect(created.json.token).toMatch(/^vmtok_[A-Za-z0-9_-]{43}$/);
    expect(created.json).toMatchObject({ name: 'ci-bot', scopes: ['events:write', 'nodes:read'], expires_at: null });
    const token = created.json.token as string;

    const journal = readFileSync(join(c.dir, 'logs', 'events.jsonl'), 'utf8');
    expect(journal).toContain('"kind":"api_token"');
    expect(journal).not.toContain(token);
    expect(journal).not.toContain(token.slice(6));

    expect((await call(c, token, 'GET', '/api/nodes')).status).toBe(200);
    const note = await call(c, token, 'POST', '/api/events', { kind: 'note', body: { text: 'deploy done' } });
    expect(note.status).toBeLessThan(300);
    // The author of what a token does is the token's name.
    const events = await c.api('GET', '/api/events?kind=note');
    expect(events.json.items.at(-1).author).toBe('token:ci-bot');

    const list = await c.api('GET', '/api/tokens');
    expect(list.json).toHaveLength(1);
    expect(list.json[0]).toMatchObject({ token_id: created.json.token_id, name: 'ci-bot', status: 'active', created_by: 'admin' });
    expect(typeof list.json[0].last_used).toBe('string');
    expect(JSON.stringify(list.json)).not.toMatch(/sha256|vmtok_/);
  });

  // Every operator route and the scope it needs: a token with all scopes but that one is refused with 403.
  const ROUTES: Array<[string, string, string, unknown?]> = [
    ['GET', '/api/nodes', 'nodes:read'],
    ['GET', '/api/nodes/n1', 'nodes:read'],
    ['POST', '/api/nodes/n1/approve', 'nodes:approve'],
    ['POST', '/api/nodes/n1/reject', 'nodes:approve'],
    ['POST', '/api/nodes/n1/revoke', 'nodes:approve'],
    ['POST', '/api/join-tokens', 'nodes:approve', {}],
    ['GET', '/api/join-tokens', 'nodes:approve'],
    ['DELETE', '/api/join-tokens/abc', 'nodes:approve'],
    ['POST', '/api/commands', 'commands:write', {}],
    ['GET', '/api/commands', 'nodes:read'],
    ['GET', '/api/commands/x', 'nodes:read'],
    ['POST', '/api/events', 'events:write', {}],
    ['GET', '/api/events', 'events:read'],
    ['GET', '/api/incidents', 'events:read'],
    ['GET', '/api/attention', 'nodes:read'],
    ['GET', '/api/ledger/root', 'nodes:read'],
    ['GET', '/api/ledger/proof/x', 'nodes:read'],
    ['GET', '/events', 'events:read'],
    ['GET', '/metrics', 'metrics:read'],
    ['GET', '/ledger/scans/checkpoint', 'ledger:read'],
    ['GET', '/ledger/scans/tile/0/000', 'ledger:read'],
    ['GET', '/ledger/commands/tile/entries/000', 'ledger:read'],
    ['GET', '/api/ledger/vkey', 'ledger:read'],
    ['GET', '/api/ledger/consistency?old=0', 'ledger:read'],
    ['POST', '/api/tokens', 'admin', {}],
    ['GET', '/api/tokens', 'admin'],
    ['DELETE', '/api/tokens/0123456789ab', 'admin'],
  ];
  const ALL = ['events:read', 'events:write', 'nodes:read', 'nodes:approve', 'commands:write', 'metrics:read', 'ledger:read'];

  it('refuses every route to a token without its scope (403) and lets it pass with it', async () => {
    const c = await center();
    const tokens = new Map<string, string>();
    for (const scope of [...ALL, 'admin']) {
      const others = ALL.filter((s) => s !== scope);
      const r = await c.api('POST', '/api/tokens', { name: `without-${scope.replace(':', '-')}`, scopes: others });
      expect(r.status, JSON.stringify(r.json)).toBe(201);
      tokens.set(scope, r.json.token);
    }
    const gaps: string[] = [];
    for (const [method, path, scope, body] of ROUTES) {
      const r = await call(c, tokens.get(scope)!, method, path, body);
      if (r.status !== 403) gaps.push(`${method} ${path}: ${r.status} without ${scope}`);
    }
    expect(gaps).toEqual([]);
    const withScope = await c.api('POST', '/api/tokens', { name: 'reader', scopes: ['nodes:read'] });
    expect((await call(c, withScope.json.token, 'GET', '/api/ledger/root')).status).toBe(200);
  });

  it('revoke and expiry end a token; both survive a restart, as does last-used', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    let nowMs = Date.now();
    const now = () => new Date(nowMs);
    const c = await center(t.dir, { now });
    const a = await c.api('POST', '/api/tokens', { name: 'short', scopes: ['nodes:read'], ttl_secs: 3600 });
    const b = await c.api('POST', '/api/tokens', { name: 'doomed', scopes: ['nodes:read'] });
    const keep = await c.api('POST', '/api/tokens', { name: 'keeper', scopes: ['nodes:read'] });
    expect(await c.api('POST', '/api/tokens', { name: 'keeper', scopes: ['nodes:read'] })).toMatchObject({ status: 409, json: { error: { code: 'NAME_TAKEN' } } });
    expect((await call(c, a.json.token, 'GET', '/api/nodes')).status).toBe(200);
    expect((await call(c, keep.json.token, 'GET', '/api/nodes')).status).toBe(200);

    const del = await c.api('DELETE', `/api/tokens/${b.json.token_id}`);
    expect(del.json).toMatchObject({ status: 'revoked', revoked_by: 'admin' });
    expect((await call(c, b.json.token, 'GET', '/api/nodes')).status).toBe(401);
    expect((await c.api('DELETE', '/api/tokens/ffffffffffff')).status).toBe(404);
    expect((await c.api('DELETE', '/api/tokens/..%2f')).status).toBe(400);

    nowMs += 3601_000;
    expect((await call(c, a.json.token, 'GET', '/api/nodes')).status).toBe(401);
    const lastUsed = (await c.api('GET', '/api/tokens')).json.find((x: { name: string }) => x.name === 'keeper').last_used;
    await c.close();

    const c2 = await center(t.dir, { now });
    const list = (await c2.api('GET', '/api/tokens')).json as Array<{ name: string; status: string; last_used: string | null }>;
    expect(Object.fromEntries(list.map((x) => [x.name, x.status]))).toEqual({ short: 'expired', doomed: 'revoked', keeper: 'active' });
    expect(list.find((x) => x.name === 'keeper')!.last_used).toBe(lastUsed);
    expect((await call(c2, b.json.token, 'GET', '/api/nodes')).status).toBe(401);
    expect((await call(c2, keep.json.token, 'GET', '/api/nodes')).status).toBe(200);
  });

  it('validates create requests', async () => {
    const c = await center();
    for (const body of [{ name: 'x', scopes: [] }, { name: 'x', scopes: ['root'] }, { name: '../../x', scopes: ['admin'] }, { name: 'x', scopes: ['admin'], ttl_secs: 1 }, { name: 'x', scopes: ['admin'], extra: 1 }]) {
      const r = await c.api('POST', '/api/tokens', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error.code).toBe('VALIDATION_ERROR');
    }
  });
});

describe('api token reducer and usage', () => {
  const env = (seq: number, body: Record<string, unknown>) => ({ v: 1 as const, id: `e${seq}`, seq, ts: new Date(seq * 1000).toISOString(), kind: 'api_token', author: 'admin', body });

  it('ignores malformed and duplicate envelopes, revokes once', () => {
    const s = createApiTokenState();
    const create = { action: 'create', token_id: '0123456789ab', name: 'a', scopes: ['nodes:read'], token_sha256: 'a'.repeat(64), expires_at: null };
    applyApiTokenEnvelope(s, env(1, create));
    applyApiTokenEnvelope(s, env(2, { ...create, name: 'other' }));
    applyApiTokenEnvelope(s, env(3, { action: 'create', token_id: 'zz' }));
    applyApiTokenEnvelope(s, env(4, { action: 'explode' }));
    expect([...s.byId.values()].map((t) => t.name)).toEqual(['a']);
    applyApiTokenEnvelope(s, env(5, { action: 'revoke', token_id: '0123456789ab' }));
    applyApiTokenEnvelope(s, env(6, { action: 'revoke', token_id: '0123456789ab' }));
    const t = s.byId.get('0123456789ab')!;
    expect(t.revoked_at).toBe(new Date(5000).toISOString());
    expect(s.byHash.size).toBe(0);
    expect(tokenStatus(t, 0)).toBe('revoked');
  });

  it('flushes last-used only when changed, and on stop', () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const file = join(t.dir, 'usage.json');
    const u = createApiTokenUsage({ file, now: () => new Date(42_000) });
    u.flush();
    expect(() => readFileSync(file)).toThrow();
    u.touch('0123456789ab');
    u.stop();
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ '0123456789ab': new Date(42_000).toISOString() });
    expect(createApiTokenUsage({ file }).lastUsed('0123456789ab')).toBe(new Date(42_000).toISOString());
  });
});
