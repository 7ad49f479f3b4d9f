/**
 * Cloudflare Access against a local JWKS server (node:http, port 0) with RSA keys generated here by jose:
 * valid, expired, wrong aud, wrong issuer, unknown kid and key rotation, tampered, missing header, alg none/HS256.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { startTestCenter, tempDir, type TestCenter } from '../../test/helpers.js';
import { createCfAccess, normaliseTeamDomain } from './cf-access.js';

const TEAM = 'vmtest';
const ISS = 'https://vmtest.cloudflareaccess.com';
const AUD = 'aud-0123456789abcdef';

interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function newKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

let jwksServer: Server;
let certsUrl: string;
let served: JWK[] = [];
/** How the certs endpoint answers: the key set, an HTTP 500, or a body that is not JSON. */
let certsMode: 'keys' | 'http-500' | 'not-json' = 'keys';
let fetches = 0;
let k1: Key;
let k2: Key;

beforeAll(async () => {
  [k1, k2] = await Promise.all([newKey('kid-1'), newKey('kid-2')]);
  served = [k1.jwk];
  jwksServer = createServer((req, res) => {
    if (req.url !== '/cdn-cgi/access/certs') return void res.writeHead(404).end();
    fetches++;
    if (certsMode === 'http-500') return void res.writeHead(500, { 'content-type': 'text/plain' }).end('upstream exploded');
    if (certsMode === 'not-json') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>captive portal</html>');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: served }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  certsUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/cdn-cgi/access/certs`;
});
afterAll(() => new Promise<void>((r) => jwksServer.close(() => r())));

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  served = [k1.jwk];
  certsMode = 'keys';
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function center(overrides: Record<string, unknown> = {}): Promise<TestCenter> {
  const t = tempDir();
  const c = await startTestCenter(t.dir, { cfAccessTeamDomain: TEAM, cfAccessAud: AUD, cfAccessCertsUrl: certsUrl, ...overrides });
  cleanups.push(t.cleanup, () => c.close());
  return c;
}

function sign(key: Key, claims: JWTPayload = {}, opts: { iss?: string; aud?: string | string[]; exp?: number | string; kid?: string } = {}): Promise<string> {
  return new SignJWT({ email: 'ops@example.com', type: 'app', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? key.kid })
    .setIssuer(opts.iss ?? ISS)
    .setAudience(opts.aud ?? [AUD])
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? '5m')
    .sign(key.privateKey);
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

async function get(c: { url: string }, path: string, headers: Record<string, string> = {}) {
  const res = await request(c.url + path, { headers });
  const text = await res.body.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, json, text };
}

describe('Cloudflare Access gate (real center, local JWKS)', () => {
  it('accepts a valid assertion and makes the email the author and the console identity', async () => {
    const c = await center();
    const jwt = await sign(k1);
    expect((await get(c, '/api/nodes', { 'cf-access-jwt-assertion': jwt })).status).toBe(200);
    const res = await request(`${c.url}/api/events`, {
      method: 'POST',
      headers: { 'cf-access-jwt-assertion': jwt, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'note', body: { text: 'hello from Access' } }),
    });
    expect(res.statusCode).toBeLessThan(300);
    await res.body.dump();
    const events = await get(c, '/api/events?kind=note', { 'cf-access-jwt-assertion': jwt });
    expect(events.json.items.at(-1).author).toBe('ops@example.com');
    const page = await get(c, '/console', { 'cf-access-jwt-assertion': jwt });
    expect(page.status).toBe(200);
    expect(page.text).toContain('ops@example.com');
  });

  const BAD: Array<[string, () => Promise<string>, RegExp]> = [
    ['expired', () => sign(k1, {}, { exp: Math.floor(Date.now() / 1000) - 120 }), /expired/],
    ['wrong aud', () => sign(k1, {}, { aud: ['someone-else'] }), /aud/],
    ['wrong issuer', () => sign(k1, {}, { iss: 'https://evil.cloudflareaccess.com' }), /iss/],
    ['unknown kid', () => sign(k2), /unknown key/],
    ['tampered payload', async () => {
      const [h, , s] = (await sign(k1)).split('.');
      return `${h}.${b64({ email: 'admin@example.com', iss: ISS, aud: [AUD], iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 300 })}.${s}`;
    }, /signature/],
    ['alg none', async () => `${b64({ alg: 'none', kid: 'kid-1' })}.${b64({ email: 'x@example.com', iss: ISS, aud: [AUD], iat: 1, exp: 4e9 })}.`, /algorithm|not allowed|invalid/i],
    ['HS256 keyed with the public key', async () =>
      new SignJWT({ email: 'x@example.com' }).setProtectedHeader({ alg: 'HS256', kid: 'kid-1' }).setIssuer(ISS).setAudience(AUD).setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(k1.jwk.n!)), /algorithm/],
    ['no identity claim', () => sign(k1, { email: undefined }), /neither an email/],
    ['garbage', async () => 'not-a-jwt', /compact/],
  ];

  it.each(BAD)('refuses %s with 401 CF_ACCESS_INVALID', async (_name, make, why) => {
    const c = await center();
    const r = await get(c, '/api/nodes', { 'cf-access-jwt-assertion': await make() });
    expect(r.status).toBe(401);
    expect(r.json.error.code).toBe('CF_ACCESS_INVALID');
    expect(r.json.error.message).toMatch(why);
  });

  it('requires the header on operator, console and stream routes, even with a valid Bearer token; /healthz and the agent API are exempt', async () => {
    const c = await center();
    const bearer = { authorization: `Bearer ${c.adminToken}` };
    for (const path of ['/api/nodes', '/events', '/metrics', '/console', '/console/login', '/api/tokens']) {
      const r = await get(c, path, bearer);
      expect(r.status, path).toBe(401);
      expect(r.json.error.code, path).toBe('CF_ACCESS_REQUIRED');
    }
    expect((await get(c, '/healthz')).status).toBe(200);
    const agent = await request(`${c.url}/api/agent/heartbeat`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(agent.statusCode).toBe(401);
    expect(((await agent.body.json()) as any).error.code).toBe('MISSING_SIGNATURE');
  });

  it('a Bearer token presented with a valid assertion names the acting identity', async () => {
    const c = await center();
    const tok = await c.api('POST', '/api/tokens', { name: 'bot', scopes: ['nodes:read'] }, { 'cf-access-jwt-assertion': await sign(k1) });
    expect(tok.status).toBe(201);
    const jwt = await sign(k1);
    // Scopes are the token's, not the Access user's (admin by default).
    expect((await get(c, '/api/nodes', { 'cf-access-jwt-assertion': jwt, authorization: `Bearer ${tok.json.token}` })).status).toBe(200);
    expect((await get(c, '/api/tokens', { 'cf-access-jwt-assertion': jwt, authorization: `Bearer ${tok.json.token}` })).status).toBe(403);
  });

  it('service tokens become service:<common_name> with the service scopes', async () => {
    const c = await center({ cfAccessServiceScopes: 'nodes:read' });
    const jwt = await sign(k1, { email: undefined, common_name: 'abc123.access', sub: '' });
    expect((await get(c, '/api/nodes', { 'cf-access-jwt-assertion': jwt })).status).toBe(200);
    const denied = await get(c, '/api/join-tokens', { 'cf-access-jwt-assertion': jwt });
    expect(denied.status).toBe(403);
  });

  it('VAULTMESH_CF_ACCESS_ALLOW_BEARER=1 lets Bearer tokens in without an assertion', async () => {
    const c = await center({ cfAccessAllowBearer: '1' });
    expect((await get(c, '/api/nodes', { authorization: `Bearer ${c.adminToken}` })).status).toBe(200);
    expect((await get(c, '/api/nodes', { authorization: 'Bearer vmadmin_wrong' })).status).toBe(401);
    expect((await get(c, '/api/nodes')).json.error.code).toBe('CF_ACCESS_REQUIRED');
  });

  it('answers 503 CF_ACCESS_UNAVAILABLE when the certs cannot be fetched', async () => {
    const c = await center({ cfAccessCertsUrl: 'http://127.0.0.1:9/cdn-cgi/access/certs' });
    const r = await get(c, '/api/nodes', { 'cf-access-jwt-assertion': await sign(k1) });
    expect(r.status).toBe(503);
    expect(r.json.error.code).toBe('CF_ACCESS_UNAVAILABLE');
  });

  // Fail closed, and say it is our side: a broken certs endpoint is not the caller's invalid token.
  for (const mode of ['http-500', 'not-json'] as const) {
    it(`answers 503 CF_ACCESS_UNAVAILABLE when the certs endpoint answers ${mode === 'http-500' ? 'HTTP 500' : 'something that is not JSON'}`, async () => {
      certsMode = mode;
      const c = await center();
      const before = fetches;
      const r = await get(c, '/api/nodes', { 'cf-access-jwt-assertion': await sign(k1) });
      expect(fetches).toBeGreaterThan(before); // the real endpoint was asked
      expect(r.status).toBe(503);
      expect(r.json.error.code).toBe('CF_ACCESS_UNAVAILABLE');
      expect(r.json.error.message).toMatch(/signing keys/);
    });
  }

  it('refuses a half-configured Access at start-up', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    await expect(startTestCenter(t.dir, { cfAccessTeamDomain: TEAM })).rejects.toThrow(/both/);
  });
});

describe('Cloudflare Access key rotation (verifier)', () => {
  it('re-fetches the JWKS for an unknown kid and accepts the new key once it is published', async () => {
    const access = createCfAccess({ teamDomain: TEAM, aud: AUD, certsUrl, userScopes: ['admin'], serviceScopes: ['nodes:read'], cooldownMs: 0 });
    const before = fetches;
    expect((await access.verify(await sign(k1))).name).toBe('ops@example.com');
    expect(fetches).toBe(before + 1);
    await access.verify(await sign(k1));
    expect(fetches).toBe(before + 1); // cached
    const next = await sign(k2, { email: 'new@example.com' });
    await expect(access.verify(next)).rejects.toMatchObject({ code: 'CF_ACCESS_INVALID', status: 401 });
    expect(fetches).toBe(before + 2); // unknown kid → one re-fetch
    served = [k1.jwk, k2.jwk]; // Cloudflare publishes the new key beside the old one
    expect((await access.verify(next)).name).toBe('new@example.com');
    expect((await access.verify(await sign(k1))).name).toBe('ops@example.com');
  });

  it('rate-limits re-fetches with the cooldown', async () => {
    const access = createCfAccess({ teamDomain: TEAM, aud: AUD, certsUrl, userScopes: ['admin'], serviceScopes: [], cooldownMs: 60_000 });
    await access.verify(await sign(k1));
    const before = fetches;
    for (let i = 0; i < 5; i++) await expect(access.verify(await sign(k2))).rejects.toMatchObject({ code: 'CF_ACCESS_INVALID' });
    expect(fetches).toBe(before);
  });

  it('an Access identity stops being valid when its assertion expires (what ends its open streams)', async () => {
    let nowMs = Date.now();
    const access = createCfAccess({ teamDomain: TEAM, aud: AUD, certsUrl, userScopes: ['admin'], serviceScopes: [], clockToleranceSecs: 30, now: () => new Date(nowMs) });
    const exp = Math.floor(nowMs / 1000) + 300;
    const identity = await access.verify(await sign(k1, {}, { exp }));
    expect(identity.stillValid?.()).toBe(true);
    nowMs = (exp + 29) * 1000;
    expect(identity.stillValid?.()).toBe(true); // within the clock tolerance the center accepts
    nowMs = (exp + 31) * 1000;
    expect(identity.stillValid?.()).toBe(false);
  });

  it('normalises team domains', () => {
    expect(normaliseTeamDomain('vmtest')).toBe('vmtest.cloudflareaccess.com');
    expect(normaliseTeamDomain('https://VMtest.cloudflareaccess.com/')).toBe('vmtest.cloudflareaccess.com');
    expect(() => normaliseTeamDomain('a b')).toThrow();
  });
});
