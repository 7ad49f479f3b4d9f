/**
 * A generated corpus of bad requests against every endpoint of the center, and a runner that checks each answer:
 * JSON APIs must answer 4xx with `{error:{code,message}}`, HTML routes (console) anything but 5xx, nothing may be
 * accepted. Used by the reliability suite (the whole corpus) and the default suite (a bounded sample).
 */
import { request } from 'undici';
import { generateKeyPair, type KeyPair } from '../../protocol/keys.js';
import { signRequest } from '../../protocol/request-signing.js';
import { signRotation } from '../../protocol/node-key-rotation.js';
import { heartbeatBody } from '../helpers.js';

export interface BadCase {
  name: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
  /** 'json': a 4xx JSON error is required; 'html': anything but a 5xx (console pages, login redirects). */
  kind: 'json' | 'html';
  /** Sent by the default suite's sample too, not only by the full reliability run. */
  always?: boolean;
  /** The error code the answer must carry, when one is required. */
  code?: string;
}

export interface CorpusContext {
  adminToken: string;
  /** An enrolled, approved node whose key signs the agent cases (so validation behind auth is reached). */
  node: { id: string; key: KeyPair };
  /** A console session cookie (`vm_session=…`) of the admin, for the cookie-borne form cases. */
  sessionCookie?: string;
  now?: () => Date;
}

const FUZZ_PER_ENDPOINT = 180;
const HUGE = 'x'.repeat(200_000); // under the 256 KiB body limit, over every string maximum
const OVERSIZED = 'y'.repeat(300_000); // over the body limit
const nestedArrays = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const nestedObjects = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

/** Raw JSON texts that are not valid JSON or not objects. */
const MALFORMED = [
  '',
  '{',
  '}',
  '{"a":}',
  '{"a":1,}',
  "{'a':1}",
  '{"a":1}{"b":2}',
  'null',
  'true',
  '0',
  '"string"',
  '[]',
  '[1,2,3]',
  'NaN',
  '{"a":NaN}',
  '{"a":Infinity}',
  '{"a":1e400}',
  '{"a":"\\ud800"}',
  '{"a":"\\x41"}',
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  nestedArrays(100_000),
  nestedObjects(20_000),
  nestedArrays(1000),
  '\uFEFF{"unexpected_field":1}',
  ' '.repeat(1000),
  '{"a":"' + '\\u0000'.repeat(1000) + '"}',
];

/** Bytes that are not UTF-8. */
const INVALID_UTF8 = [Buffer.from([0xff, 0xfe, 0xfd]), Buffer.from('{"a":"\xc3\x28"}', 'latin1'), Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]), Buffer.from([0xc0, 0xaf])];

type FieldType = 'string' | 'number' | 'bool' | 'object' | 'array' | 'time';
const WRONG: Record<FieldType, unknown[]> = {
  string: [null, 0, true, [], {}, ['x'], HUGE, { $gt: '' }],
  number: ['1', null, true, [], {}, -1, -0.5, '1e3'],
  bool: ['true', 0, 1, null, [], {}],
  object: ['x', 0, [], null, true, JSON.parse(nestedObjects(500)), Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]))],
  array: ['x', 0, {}, null, Array.from({ length: 60_000 }, () => 0), JSON.parse(nestedArrays(2000))],
  time: ['not-a-date', 0, null, '2025-13-45T99:99:99Z', '2025-01-01', HUGE],
};

/** A small seeded PRNG (mulberry32) so the corpus is the same on every run. */
function prng(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ODD_STRINGS = ['', ' ', '\u0000', '\r\n', '../../etc/passwd', '%00', '<script>alert(1)</script>', '💥', '\u202e', 'null', '0', '-1', 'true', '{"a":1}', '2025-01-01T00:00:00Z', 'a'.repeat(300), 'é'.repeat(2000)];

/** A random JSON value of bounded depth: numbers at the edges, odd strings, arrays and objects. */
function randomValue(rnd: () => number, depth = 0): unknown {
  const r = rnd();
  if (depth > 3 || r < 0.2) return [0, -1, 1.5, -0.0, 2 ** 53 + 1, 1e300, -1e300, Number.MAX_SAFE_INTEGER][Math.floor(rnd() * 8)];
  if (r < 0.45) return ODD_STRINGS[Math.floor(rnd() * ODD_STRINGS.length)];
  if (r < 0.55) return [null, true, false][Math.floor(rnd() * 3)];
  if (r < 0.75) return Array.from({ length: Math.floor(rnd() * 5) }, () => randomValue(rnd, depth + 1));
  return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 5) }, (_, i) => [ODD_STRINGS[Math.floor(rnd() * ODD_STRINGS.length)] + i, randomValue(rnd, depth + 1)]));
}

/**
 * Random mutations of `base`: a few fields (existing or new, at any depth) set to random values, and always one
 * unknown top-level field so that no mutation can become an acceptable request by chance (the schemas are strict).
 */
function fuzzed(base: Record<string, unknown>, n: number, seed: number): unknown[] {
  const rnd = prng(seed);
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const body: any = structuredClone(base);
    const edits = 1 + Math.floor(rnd() * 3);
    for (let e = 0; e < edits; e++) {
      let cur = body;
      for (let d = 0; d < 3; d++) {
        const keys = Object.keys(cur);
        const k = keys[Math.floor(rnd() * keys.length)];
        if (k !== undefined && cur[k] && typeof cur[k] === 'object' && !Array.isArray(cur[k]) && rnd() < 0.5) cur = cur[k];
        else break;
      }
      const keys = Object.keys(cur);
      const key = rnd() < 0.8 && keys.length ? keys[Math.floor(rnd() * keys.length)]! : `new_${Math.floor(rnd() * 1000)}`;
      if (rnd() < 0.15) delete cur[key];
      else cur[key] = randomValue(rnd);
    }
    body[`fuzz_${i}`] = randomValue(rnd);
    out.push(body);
  }
  return out;
}

/** Every field of `base` (by dotted path) replaced by each wrong value for its type, plus missing required fields. */
function mutations(base: Record<string, unknown>, fields: Record<string, FieldType>, required: string[]): Array<{ label: string; body: unknown }> {
  const out: Array<{ label: string; body: unknown }> = [];
  const set = (obj: any, path: string[], value: unknown, del = false) => {
    const copy = structuredClone(obj);
    let cur = copy;
    for (const k of path.slice(0, -1)) cur = cur[k];
    if (del) delete cur[path.at(-1)!];
    else cur[path.at(-1)!] = value;
    return copy;
  };
  for (const [field, type] of Object.entries(fields)) {
    WRONG[type].forEach((v, i) => out.push({ label: `${field}=${type}-wrong-${i}`, body: set(base, field.split('.'), v) }));
  }
  for (const field of required) out.push({ label: `missing ${field}`, body: set(base, field.split('.'), undefined, true) });
  out.push({ label: 'extra field', body: { ...base, unexpected_field: 1 } });
  out.push({ label: 'extra nested field', body: { ...base, nested: { a: [1, { b: 2 }] } } });
  return out;
}

export function buildCorpus(ctx: CorpusContext): BadCase[] {
  const cases: BadCase[] = [];
  const now = ctx.now ?? (() => new Date());
  const adminJson = { authorization: `Bearer ${ctx.adminToken}`, 'content-type': 'application/json' };
  const admin = { authorization: `Bearer ${ctx.adminToken}` };
  const add = (c: Omit<BadCase, 'kind'> & { kind?: BadCase['kind'] }) => cases.push({ kind: 'json', ...c });

  // ---- operator JSON endpoints: bodies that must be rejected (each base is itself unacceptable in a fixed way) ----
  const operatorPosts: Array<{ path: string; base: Record<string, unknown>; fields: Record<string, FieldType>; required: string[] }> = [
    // Strict schema: the extra `poison` field makes even a "fixed" mutation invalid (every field has a default).
    { path: '/api/join-tokens', base: { uses: 1, ttl_secs: 3600, label: 'x', poison: true }, fields: { uses: 'number', ttl_secs: 'number', label: 'string' }, required: [] },
    // A command for a node that does not exist.
    { path: '/api/commands', base: { node_id: 'ghost-node', action: 'restart-unit', args: { unit: 'nginx.service' }, ttl_secs: 60 }, fields: { node_id: 'string', action: 'string', args: 'object', ttl_secs: 'number' }, required: ['node_id', 'action'] },
    // An ack of an incident that does not exist.
    { path: '/api/events', base: { kind: 'ack', body: { incident_id: 'no-such-incident' } }, fields: { kind: 'string', body: 'object', 'body.incident_id': 'string', node_id: 'string', id: 'string', author: 'string' }, required: ['kind', 'body.incident_id'] },
    // Strict schema: a "fixed" overlap or prepare flag still carries `poison`, so no key is rotated or prepared.
    { path: '/api/keys/rotate', base: { overlap_secs: 0, poison: true }, fields: { overlap_secs: 'number', prepare: 'bool' }, required: [] },
    // A maintenance window for a node that does not exist, with a field the strict schema refuses.
    { path: '/api/maintenance', base: { node_id: 'ghost-node', reason: 'r', for_secs: 3600, scans: 'defer', poison: true }, fields: { node_id: 'string', reason: 'string', for_secs: 'number', scans: 'string' }, required: ['reason'] },
  ];
  for (const [k, ep] of operatorPosts.entries()) {
    for (const m of mutations(ep.base, ep.fields, ep.required)) add({ name: `POST ${ep.path} ${m.label}`, method: 'POST', path: ep.path, headers: adminJson, body: JSON.stringify(m.body) });
    fuzzed(ep.base, FUZZ_PER_ENDPOINT, 1000 + k).forEach((b, i) => add({ name: `POST ${ep.path} fuzz #${i}`, method: 'POST', path: ep.path, headers: adminJson, body: JSON.stringify(b) }));
    add({ name: `POST ${ep.path} unacceptable base`, method: 'POST', path: ep.path, headers: adminJson, body: JSON.stringify(ep.base) });
  }
  const allJsonPosts = ['/api/join-tokens', '/api/commands', '/api/events', '/api/keys/rotate', '/api/maintenance', '/api/nodes/ghost-node/approve', '/api/nodes/ghost-node/reject', '/api/nodes/ghost-node/revoke', '/api/commands/ghost-cmd/approve', '/api/commands/ghost-cmd/deny'];
  for (const path of allJsonPosts) {
    MALFORMED.forEach((text, i) => add({ name: `POST ${path} malformed #${i}`, method: 'POST', path, headers: adminJson, body: text }));
    INVALID_UTF8.forEach((buf, i) => add({ name: `POST ${path} invalid UTF-8 #${i}`, method: 'POST', path, headers: adminJson, body: buf }));
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/jsonx', '']) {
      add({ name: `POST ${path} content-type ${JSON.stringify(type)}`, method: 'POST', path, headers: { ...admin, ...(type ? { 'content-type': type } : {}) }, body: '{"uses":1}' });
    }
    add({ name: `POST ${path} oversized body`, method: 'POST', path, headers: adminJson, body: `{"label":"${OVERSIZED}"}` });
    add({ name: `POST ${path} huge string`, method: 'POST', path, headers: adminJson, body: `{"label":"${HUGE}","poison":1}` });
  }

  // ---- authentication of operator endpoints ----
  const operatorGets = ['/api/nodes', '/api/nodes/ghost-node', '/api/join-tokens', '/api/commands', '/api/commands/ghost', '/api/events', '/api/incidents', '/api/attention', '/api/maintenance', '/api/ledger/root', '/api/ledger/proof/ghost', '/api/keys', '/metrics', '/events'];
  const badAuth: Array<[string, Record<string, string>]> = [
    ['none', {}],
    ['wrong token', { authorization: 'Bearer vmadmin_wrong' }],
    ['empty bearer', { authorization: 'Bearer ' }],
    ['basic', { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` }],
    ['token without scheme', { authorization: ctx.adminToken }],
    ['token with a flipped char', { authorization: `Bearer ${ctx.adminToken.slice(0, -1)}${ctx.adminToken.endsWith('a') ? 'b' : 'a'}` }],
    ['huge token', { authorization: `Bearer ${'a'.repeat(16_000)}` }],
    ['latin-1 bytes', { authorization: 'Bearer \u00e9\u00ff' }],
    ['forged session cookie', { cookie: 'vm_session=forged; vmcc_session=forged' }],
    ['forged Access JWT', { 'cf-access-jwt-assertion': 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' }],
  ];
  for (const path of operatorGets) for (const [label, headers] of badAuth) add({ name: `GET ${path} auth: ${label}`, method: 'GET', path, headers });
  for (const path of allJsonPosts) for (const [label, headers] of badAuth) add({ name: `POST ${path} auth: ${label}`, method: 'POST', path, headers: { ...headers, 'content-type': 'application/json' }, body: '{"uses":1}' });

  // ---- path traversal and hostile ids ----
  const badIds = ['..', '..%2F..%2Fetc%2Fpasswd', '%2e%2e%2f%2e%2e%2fstate%2fadmin.token', '..%5c..%5cwindows', '%00', 'a%00b', '%0d%0aSet-Cookie:x=1', 'x'.repeat(5000), '%ff%fe', '-leading-dash', '.hidden', 'a%2Fb', '%252e%252e', '<script>', 'node id'];
  for (const id of badIds) {
    for (const tpl of ['/api/nodes/:id', '/api/commands/:id', '/api/ledger/proof/:id']) add({ name: `GET ${tpl} id=${id.slice(0, 40)}`, method: 'GET', path: tpl.replace(':id', id), headers: admin });
    for (const action of ['approve', 'reject', 'revoke']) add({ name: `POST /api/nodes/${id.slice(0, 40)}/${action}`, method: 'POST', path: `/api/nodes/${id}/${action}`, headers: adminJson, body: '{}' });
    for (const action of ['approve', 'deny']) add({ name: `POST /api/commands/${id.slice(0, 40)}/${action}`, method: 'POST', path: `/api/commands/${id}/${action}`, headers: adminJson, body: '{}' });
    add({ name: `DELETE /api/join-tokens/${id.slice(0, 40)}`, method: 'DELETE', path: `/api/join-tokens/${id}`, headers: admin });
  }

  // ---- bad query values ----
  const eventQueries = ['since=-1', 'since=abc', 'since=1e99', 'since=99999999999999999999', 'since=2025-13-01T00:00:00Z', 'limit=0', 'limit=-5', 'limit=1001', 'limit=99999999', 'limit=abc', 'limit=1.5', 'kind=UPPER', `kind=${'a,'.repeat(100)}`, 'kind=%00', 'node_id=../etc', `node_id=${'n'.repeat(500)}`, 'unknown=1', 'since=1&since=2&bogus', `since=${'9'.repeat(5000)}`, 'limit=%ff'];
  for (const q of eventQueries) add({ name: `GET /api/events?${q.slice(0, 50)}`, method: 'GET', path: `/api/events?${q}`, headers: admin });
  for (const q of ['limit=0', 'limit=abc', 'limit=100000', 'status=bogus', 'node_id=../x', `node_id=${'n'.repeat(500)}`]) add({ name: `GET /api/commands?${q.slice(0, 50)}`, method: 'GET', path: `/api/commands?${q}`, headers: admin });

  // ---- methods that do not exist ----
  for (const path of ['/api/nodes', '/api/events', '/api/commands', '/api/join-tokens', '/api/agent/heartbeat', '/api/ledger/root', '/metrics', '/healthz']) {
    for (const method of ['PUT', 'PATCH', 'DELETE']) add({ name: `${method} ${path}`, method, path, headers: admin });
  }

  // ---- agent API: signed by an enrolled node, bodies that must be rejected ----
  const node = ctx.node;
  const signed = (method: string, path: string, body: string | Buffer, opts: { key?: KeyPair; nodeId?: string; at?: Date; headers?: Record<string, string> } = {}) => ({
    ...signRequest({ method, path, nodeId: opts.nodeId ?? node.id, body }, opts.key ?? node.key, { now: () => opts.at ?? now() }),
    'content-type': 'application/json',
    ...opts.headers,
  });
  const hb = heartbeatBody(node.id);
  const agentPosts: Array<{ path: string; base: Record<string, unknown>; fields: Record<string, FieldType>; required: string[] }> = [
    {
      path: '/api/agent/heartbeat',
      base: hb,
      fields: { node_id: 'string', hostname: 'string', os_profile: 'string', cloudflare_ok: 'bool', services_ok: 'bool', vaultmesh_root: 'string', timestamp: 'time', agent_version: 'string', metrics: 'object', 'metrics.load': 'array', 'metrics.mem_used_bytes': 'number', 'metrics.disk_total_bytes': 'number', 'metrics.uptime_s': 'number', id: 'string', services: 'object' },
      required: ['node_id', 'hostname', 'os_profile', 'cloudflare_ok', 'services_ok', 'vaultmesh_root', 'timestamp', 'agent_version', 'metrics', 'metrics.load'],
    },
    {
      path: '/api/agent/scan',
      base: { node_id: node.id, started_at: now().toISOString(), finished_at: now().toISOString(), agent_version: '0.1.0', trigger: 'manual', findings: [], summary: { critical: 0, high: 0, medium: 0, low: 0, info: 0, checks_run: 0, checks_failed: 0 } },
      fields: { node_id: 'string', started_at: 'time', finished_at: 'time', agent_version: 'string', trigger: 'string', findings: 'array', summary: 'object', 'summary.high': 'number', id: 'string', command_id: 'string' },
      required: ['node_id', 'started_at', 'finished_at', 'agent_version', 'trigger', 'findings', 'summary'],
    },
    {
      // A receipt for a command that was never issued.
      path: '/api/agent/receipts',
      base: { payload: { command_id: 'ghost-command', node_id: node.id, status: 'succeeded', exit_code: 0, output: '', started_at: now().toISOString(), finished_at: now().toISOString() }, signature: '0'.repeat(128), key_id: '0'.repeat(16) },
      fields: { payload: 'object', signature: 'string', key_id: 'string', 'payload.command_id': 'string', 'payload.status': 'string', 'payload.exit_code': 'number' },
      required: ['payload', 'signature'],
    },
    {
      // A key rotation whose proof of possession is by another key than the new one: refused, the key stays.
      path: '/api/agent/rotate-key',
      base: (() => {
        const r = signRotation(node.id, node.key, generateKeyPair(), now());
        return { ...r, new_key_signature: signRotation(node.id, node.key, generateKeyPair(), now()).new_key_signature };
      })(),
      fields: { statement: 'object', new_key_signature: 'string', old_key_signature: 'string', 'statement.node_id': 'string', 'statement.old_key_id': 'string', 'statement.new_public_key': 'string', 'statement.issued_at': 'time' },
      required: ['statement', 'new_key_signature', 'old_key_signature'],
    },
    {
      // Enrollment with a join token that does not exist (signed by the key it enrolls, as required).
      path: '/api/agent/enroll',
      base: { token: 'vmjoin_not_a_real_token_000000', node_id: 'newcomer', hostname: 'newcomer.example', os_profile: 'debian', public_key: 'PLACEHOLDER', agent_version: '0.1.0', facts: {} },
      fields: { token: 'string', node_id: 'string', hostname: 'string', os_profile: 'string', public_key: 'string', agent_version: 'string', facts: 'object' },
      required: ['token', 'node_id', 'hostname', 'os_profile', 'public_key', 'agent_version'],
    },
  ];
  const newcomer = generateKeyPair();
  for (const [k, ep] of agentPosts.entries()) {
    const isEnroll = ep.path.endsWith('/enroll');
    const base = isEnroll ? { ...ep.base, public_key: newcomer.publicKeyHex } : ep.base;
    const sign = (text: string | Buffer) => (isEnroll ? signed('POST', ep.path, text, { key: newcomer, nodeId: 'newcomer' }) : signed('POST', ep.path, text));
    fuzzed(base, FUZZ_PER_ENDPOINT, 2000 + k).forEach((b, i) => {
      const text = JSON.stringify(b);
      add({ name: `POST ${ep.path} fuzz #${i}`, method: 'POST', path: ep.path, headers: sign(text), body: text });
    });
    for (const m of mutations(base, ep.fields, ep.required)) {
      const text = JSON.stringify(m.body);
      add({ name: `POST ${ep.path} ${m.label}`, method: 'POST', path: ep.path, headers: sign(text), body: text });
    }
    if (!ep.path.endsWith('/heartbeat') && !ep.path.endsWith('/scan')) add({ name: `POST ${ep.path} unacceptable base`, method: 'POST', path: ep.path, headers: sign(JSON.stringify(base)), body: JSON.stringify(base) });
    MALFORMED.forEach((text, i) => add({ name: `POST ${ep.path} malformed #${i}`, method: 'POST', path: ep.path, headers: sign(text), body: text }));
    INVALID_UTF8.forEach((buf, i) => add({ name: `POST ${ep.path} invalid UTF-8 #${i}`, method: 'POST', path: ep.path, headers: sign(buf), body: buf }));
    add({ name: `POST ${ep.path} oversized`, method: 'POST', path: ep.path, headers: sign(OVERSIZED), body: OVERSIZED });

    // Forged, expired, future, replayed, mismatched signatures over an otherwise valid body.
    const good = JSON.stringify(base);
    const h = sign(good);
    const flip = (hex: string) => (hex[0] === 'a' ? 'b' : 'a') + hex.slice(1);
    const forgeries: Array<[string, Record<string, string>, (string | Buffer)?]> = [
      ['forged signature', { ...h, 'x-vm-signature': flip(h['x-vm-signature']!) }],
      ['signature of another body', h, good.replace('"0.1.0"', '"0.1.1"')],
      ['truncated signature', { ...h, 'x-vm-signature': h['x-vm-signature']!.slice(0, 100) }],
      ['non-hex signature', { ...h, 'x-vm-signature': 'z'.repeat(128) }],
      ['huge signature', { ...h, 'x-vm-signature': 'a'.repeat(10_000) }],
      ['expired timestamp', sign(good) && (isEnroll ? signed('POST', ep.path, good, { key: newcomer, nodeId: 'newcomer', at: new Date(now().getTime() - 3_600_000) }) : signed('POST', ep.path, good, { at: new Date(now().getTime() - 3_600_000) }))],
      ['future timestamp', isEnroll ? signed('POST', ep.path, good, { key: newcomer, nodeId: 'newcomer', at: new Date(now().getTime() + 3_600_000) }) : signed('POST', ep.path, good, { at: new Date(now().getTime() + 3_600_000) })],
      ['bad timestamp', { ...h, 'x-vm-timestamp': 'yesterday' }],
      ['bad nonce', { ...h, 'x-vm-nonce': 'not-hex' }],
      ['missing signature', Object.fromEntries(Object.entries(h).filter(([k]) => k !== 'x-vm-signature'))],
      ['missing node header', Object.fromEntries(Object.entries(h).filter(([k]) => k !== 'x-vm-node'))],
      ['unknown node', signed('POST', ep.path, good, { key: generateKeyPair(), nodeId: 'stranger-node' })],
      ['another key for the node', signed('POST', ep.path, good, { key: generateKeyPair(), nodeId: isEnroll ? 'newcomer' : node.id })],
      ['node header not a node id', { ...h, 'x-vm-node': '../../etc/passwd' }],
    ];
    for (const [label, headers, body] of forgeries) add({ name: `POST ${ep.path} ${label}`, method: 'POST', path: ep.path, headers, body: body ?? good });
    // The same invalid request twice: the second is a replay.
    const replayBody = JSON.stringify({ ...base, node_id: 123 });
    const rh = sign(replayBody);
    add({ name: `POST ${ep.path} replay #1 (invalid body)`, method: 'POST', path: ep.path, headers: rh, body: replayBody });
    add({ name: `POST ${ep.path} replay #2 (same nonce)`, method: 'POST', path: ep.path, headers: rh, body: replayBody });
    add({ name: `POST ${ep.path} unsigned`, method: 'POST', path: ep.path, headers: { 'content-type': 'application/json' }, body: good });
    add({ name: `POST ${ep.path} signed by another node's key`, method: 'POST', path: ep.path, headers: { ...signed('POST', ep.path, good, { key: generateKeyPair() }) }, body: good });
  }
  // Agent command poll with bad queries (signed: the query is part of the signed path).
  for (const q of ['wait=-1', 'wait=abc', 'wait=99999', 'wait=1e9', 'wait=%00']) {
    const path = `/api/agent/commands?${q}`;
    add({ name: `GET ${path}`, method: 'GET', path, headers: signed('GET', path, '') });
  }
  add({ name: 'GET /api/agent/commands signed for another query', method: 'GET', path: '/api/agent/commands?wait=0', headers: signed('GET', '/api/agent/commands?wait=1', '') });

  // ---- ill-formed UTF-16: bodies valid in every other way, with a lone surrogate (`\ud800` in the JSON text) in a
  // string. Canonical JSON refuses such a string, so it must be refused before a seq is taken (400, no gap). ----
  // The escape as JSON text (6 characters): a raw lone surrogate in a JS string would be sent as U+FFFD.
  const lone = (text: string) => `${text}\\ud800`;
  const loneLow = (text: string) => `\\udc00${text}`;
  const withLone = (value: unknown, field: string, make: (t: string) => string) => JSON.stringify(value).replace(`"${field}-MARK"`, `"${make(field)}"`);
  const stamp = now().toISOString();
  const loneAgent: Array<[string, string, unknown, string]> = [
    ['heartbeat hostname', '/api/agent/heartbeat', heartbeatBody(node.id, { hostname: 'hostname-MARK' }), 'hostname'],
    ['heartbeat agent_version', '/api/agent/heartbeat', heartbeatBody(node.id, { agent_version: 'agent_version-MARK' }), 'agent_version'],
    [
      'scan title',
      '/api/agent/scan',
      { node_id: node.id, started_at: stamp, finished_at: stamp, agent_version: '0.1.0', trigger: 'manual', findings: [{ check: 'ssh-hardening', severity: 'low', title: 'title-MARK', detail: '', evidence: {} }], summary: { critical: 0, high: 0, medium: 0, low: 1, info: 0, checks_run: 1, checks_failed: 0 } },
      'title',
    ],
  ];
  for (const [label, path, body, field] of loneAgent) {
    for (const [which, make] of [['high', lone], ['low', loneLow]] as const) {
      const text = withLone(body, field, make);
      add({ name: `POST ${path} lone ${which} surrogate in ${label}`, method: 'POST', path, headers: signed('POST', path, text), body: text, always: true, code: 'VALIDATION_ERROR' });
    }
  }
  const enrollKey = generateKeyPair();
  const enrollText = withLone({ token: 'vmjoin_not_a_real_token_000000', node_id: 'newcomer-2', hostname: 'hostname-MARK', os_profile: 'debian', public_key: enrollKey.publicKeyHex, agent_version: '0.1.0', facts: {} }, 'hostname', lone);
  add({ name: 'POST /api/agent/enroll lone surrogate in hostname', method: 'POST', path: '/api/agent/enroll', headers: signed('POST', '/api/agent/enroll', enrollText, { key: enrollKey, nodeId: 'newcomer-2' }), body: enrollText, always: true, code: 'VALIDATION_ERROR' });
  const loneOperator: Array<[string, string, unknown, string]> = [
    ['join-token label', '/api/join-tokens', { uses: 1, ttl_secs: 3600, label: 'label-MARK' }, 'label'],
    ['note text', '/api/events', { kind: 'note', body: { text: 'text-MARK' } }, 'text'],
    ['incident title', '/api/events', { kind: 'incident', body: { title: 'title-MARK', severity: 'low' } }, 'title'],
    ['node tag', '/api/events', { kind: 'tag', node_id: node.id, body: { add: ['add-MARK'] } }, 'add'],
    ['api token name', '/api/tokens', { name: 'name-MARK', scopes: ['nodes:read'] }, 'name'],
    ['command argument', '/api/commands', { node_id: node.id, action: 'ping', args: { note: 'note-MARK' } }, 'note'],
  ];
  for (const [label, path, body, field] of loneOperator) {
    for (const [which, make] of [['high', lone], ['low', loneLow]] as const) {
      add({ name: `POST ${path} lone ${which} surrogate in ${label}`, method: 'POST', path, headers: adminJson, body: withLone(body, field, make), always: true, code: 'VALIDATION_ERROR' });
    }
  }
  add({ name: 'POST /api/events lone surrogate in an object key', method: 'POST', path: '/api/events', headers: adminJson, body: '{"kind":"note","body":{"text":"hi","k\\ud800":1}}', always: true, code: 'VALIDATION_ERROR' });

  // ---- console (HTML): anything but a 5xx ----
  for (const [label, headers, body] of [
    ['login malformed form', { 'content-type': 'application/x-www-form-urlencoded' }, 'token=%ZZ&&=='],
    ['login wrong token', { 'content-type': 'application/x-www-form-urlencoded' }, 'token=wrong'],
    ['login huge', { 'content-type': 'application/x-www-form-urlencoded' }, `token=${HUGE}`],
    ['login json', { 'content-type': 'application/json' }, '{"token":1}'],
    ['login invalid UTF-8', { 'content-type': 'application/x-www-form-urlencoded' }, Buffer.from([0x74, 0x3d, 0xff, 0xfe])],
    ['login multipart garbage', { 'content-type': 'multipart/form-data; boundary=zz' }, '--zz\r\nbroken'],
    ['logout forged cookie', { cookie: 'vm_session=forged' }, ''],
  ] as const) {
    const path = label.startsWith('logout') ? '/console/logout' : '/console/login';
    add({ name: `POST ${path} ${label}`, method: 'POST', path, headers: { ...headers }, body, kind: 'html' });
  }
  // Malformed multipart bodies on every form route, with a bearer token and with a console session (the CSRF check
  // reads the form before the route does).
  const brokenForms: Array<[string, string]> = [
    ['multipart/form-data; boundary=----vm-missing', '------not-the-boundary\r\nContent-Disposition: form-data; name="kind"\r\n\r\nnote'],
    ['multipart/form-data; boundary=zz', '--zz\r\nbroken'],
    ['multipart/form-data', '--\r\n'],
  ];
  const formCredentials: Array<[string, Record<string, string>]> = [['bearer', { authorization: `Bearer ${ctx.adminToken}` }]];
  if (ctx.sessionCookie) formCredentials.push(['session', { cookie: ctx.sessionCookie, 'sec-fetch-site': 'same-origin' }]);
  for (const path of ['/console/events', '/console/commands', '/console/maintenance', '/console/maintenance/mw-ghost/end', '/console/nodes/ghost/approve', '/api/events']) {
    for (const [label, creds] of formCredentials) {
      for (const [type, body] of brokenForms) {
        add({ name: `POST ${path} malformed multipart (${label}, ${type})`, method: 'POST', path, headers: { ...creds, 'content-type': type }, body, kind: path.startsWith('/api/') ? 'json' : 'html' });
      }
    }
  }
  for (const path of ['/console', '/console/?node=../../etc', `/console?node=${'x'.repeat(5000)}`, '/console/stream', '/console/assets/..%2F..%2Fpackage.json', '/console/assets/%2e%2e%2fstate', '/console/assets/x'.padEnd(3000, 'x'), '/console/nodes/ghost/approve']) {
    add({ name: `GET ${path.slice(0, 60)} (no session)`, method: path.endsWith('/approve') ? 'POST' : 'GET', path, headers: { cookie: 'vm_session=forged' }, kind: 'html' });
  }
  return cases;
}

export interface CaseResult {
  c: BadCase;
  status: number;
  ok: boolean;
  problem?: string;
}

/** Sends one case; SSE answers (a 200 on /events would be a failure anyway) are cut off at once. */
export async function sendCase(baseUrl: string, c: BadCase): Promise<CaseResult> {
  let status = 0;
  let text = '';
  let contentType = '';
  try {
    const res = await request(baseUrl + c.path, {
      method: c.method as 'GET',
      headers: c.headers,
      ...(c.body !== undefined && c.method !== 'GET' ? { body: c.body } : {}),
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    status = res.statusCode;
    contentType = String(res.headers['content-type'] ?? '');
    if (contentType.includes('event-stream')) res.body.destroy();
    else text = await res.body.text();
  } catch (err) {
    // The server may close the connection on a body it refuses to read (413): that is a rejection, not a fault.
    const code = (err as { code?: string }).code ?? '';
    if (/UND_ERR_SOCKET|ECONNRESET|EPIPE/.test(code)) return { c, status: 0, ok: true, problem: `connection closed (${code})` };
    return { c, status: 0, ok: false, problem: `transport error ${code || String(err)}` };
  }
  if (status >= 500) return { c, status, ok: false, problem: `5xx: ${text.slice(0, 300)}` };
  if (status < 400 && c.kind === 'json') return { c, status, ok: false, problem: `accepted (${status}): ${text.slice(0, 200)}` };
  if (c.kind === 'json') {
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      return { c, status, ok: false, problem: `not JSON (${contentType}): ${text.slice(0, 120)}` };
    }
    if (typeof body?.error?.code !== 'string' || typeof body?.error?.message !== 'string') return { c, status, ok: false, problem: `no {error:{code,message}}: ${text.slice(0, 200)}` };
    if (c.code !== undefined && body.error.code !== c.code) return { c, status, ok: false, problem: `code ${body.error.code}, expected ${c.code}: ${text.slice(0, 200)}` };
  }
  return { c, status, ok: true };
}

/** Runs cases with bounded concurrency (in order within a replay pair: cases named "replay #" run one at a time). */
export async function runCorpus(baseUrl: string, cases: BadCase[], concurrency = 8): Promise<CaseResult[]> {
  const results: CaseResult[] = new Array(cases.length);
  const serial = cases.map((c, i) => [c, i] as const).filter(([c]) => c.name.includes('replay #'));
  const parallel = cases.map((c, i) => [c, i] as const).filter(([c]) => !c.name.includes('replay #'));
  for (const [c, i] of serial) results[i] = await sendCase(baseUrl, c);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < parallel.length) {
        const [c, i] = parallel[next++]!;
        results[i] = await sendCase(baseUrl, c);
      }
    }),
  );
  return results;
}
