/**
 * Simulated agents for load benchmarks: keys, enrollment (through the API, or seeded into events.jsonl as the
 * journal would hold it for very large fleets), and signed heartbeat requests built ahead of the timed window.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { dist } from './center-process.mjs';

const HB_PATH = '/api/agent/heartbeat';

export async function protocol() {
  const [keys, signing, canonical] = await Promise.all([dist('protocol/keys.js'), dist('protocol/request-signing.js'), dist('protocol/canonical-json.js')]);
  return { ...keys, ...signing, ...canonical };
}

export function heartbeatBody(nodeId, i, now = new Date()) {
  return {
    id: `${nodeId}-hb-${i}`,
    node_id: nodeId,
    hostname: `${nodeId}.example`,
    os_profile: 'debian',
    cloudflare_ok: true,
    services_ok: true,
    vaultmesh_root: '/var/lib/vaultmesh',
    timestamp: now.toISOString(),
    agent_version: '0.1.0',
    metrics: { load: [0.12, 0.2, 0.3], mem_used_bytes: 1_000_000_000 + i, mem_total_bytes: 4_000_000_000, disk_used_bytes: 10_000_000_000, disk_total_bytes: 100_000_000_000, uptime_s: 1234 + i },
  };
}

/** `n` simulated nodes with fresh Ed25519 keys. */
export async function makeNodes(n, prefix = 'sim') {
  const p = await protocol();
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${String(i).padStart(5, '0')}`, key: p.generateKeyPair() }));
}

/**
 * Writes events.jsonl with one auto-approved enrollment per node, as the center journals it: for fleets of 10,000
 * where enrolling through the API (one serialized durable write each) would spend the benchmark's budget.
 */
export async function seedEnrollments(logDir, nodes) {
  const p = await protocol();
  mkdirSync(logDir, { recursive: true });
  const ts = new Date().toISOString();
  const lines = nodes.map((n, i) =>
    p.canonicalJson({
      v: 1,
      id: `seed-enroll-${i + 1}`,
      seq: i + 1,
      ts,
      kind: 'enrollment',
      node_id: n.id,
      author: `node:${n.id}`,
      body: { action: 'request', token_id: 'seed', hostname: `${n.id}.example`, os_profile: 'debian', public_key: n.key.publicKeyHex, key_id: n.key.keyId, agent_version: '0.1.0', facts: {}, auto_approved: true },
    }),
  );
  writeFileSync(join(logDir, 'events.jsonl'), lines.join('\n') + '\n');
}

/** Enrolls nodes through the real API with one multi-use join token (the center runs with --auto-approve). */
export async function enrollViaApi(url, adminToken, nodes, concurrency = 16) {
  const p = await protocol();
  const tok = await request(`${url}/api/join-tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ uses: Math.min(10_000, nodes.length), ttl_secs: 3600 }),
  });
  const { token } = await tok.body.json();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < nodes.length) {
        const n = nodes[next++];
        const body = JSON.stringify({ token, node_id: n.id, hostname: `${n.id}.example`, os_profile: 'debian', public_key: n.key.publicKeyHex, agent_version: '0.1.0', facts: {} });
        const res = await request(`${url}/api/agent/enroll`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...p.signRequest({ method: 'POST', path: '/api/agent/enroll', nodeId: n.id, body }, n.key) },
          body,
        });
        const text = await res.body.text();
        if (res.statusCode !== 200) throw new Error(`enroll ${n.id}: ${res.statusCode} ${text}`);
      }
    }),
  );
}

/** A signed heartbeat request ready to send: {method, path, headers, body}. Signing happens here, not in the window. */
export function signedHeartbeat(p, node, i, now = new Date()) {
  const body = JSON.stringify(heartbeatBody(node.id, i, now));
  return { method: 'POST', path: HB_PATH, headers: { 'content-type': 'application/json', ...p.signRequest({ method: 'POST', path: HB_PATH, nodeId: node.id, body }, node.key) }, body };
}

/**
 * Pre-signs `count` heartbeats round-robin over `nodes`, bounded by `maxMs` of signing time. Signs node by node
 * (the signer caches only a few private KeyObjects, and importing one costs more than a signature), then lays the
 * requests out round-robin.
 */
export function presignHeartbeats(p, nodes, count, { maxMs = 15_000, startIndex = 0 } = {}) {
  const perNode = Math.ceil(count / nodes.length);
  const byNode = [];
  const t0 = performance.now();
  const now = new Date();
  for (const node of nodes) {
    const list = [];
    for (let k = 0; k < perNode; k++) list.push(signedHeartbeat(p, node, startIndex + k, now));
    byNode.push(list);
    if (performance.now() - t0 > maxMs) break;
  }
  const signMs = performance.now() - t0;
  const out = [];
  for (let k = 0; k < perNode && out.length < count; k++) for (const list of byNode) if (k < list.length && out.length < count) out.push(list[k]);
  return { requests: out, signMs, signed: byNode.reduce((a, l) => a + l.length, 0) };
}
