/**
 * A large envelope log for start-up benchmarks: `lines` heartbeats from `nodes` nodes (plus their enrollments in
 * events.jsonl), canonical envelopes exactly as the journal writes them, generated once into
 * bench/out/replay-<lines>-<nodes>/ and reused (bench/replay.mjs and bench/postgres.mjs share it).
 */
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { ROOT, dist } from './center-process.mjs';

export const REPLAY_JOURNALS = ['events.jsonl', 'heartbeats.jsonl'];
const T0 = Date.UTC(2025, 0, 1);

export const replayLogDir = (lines, nodes) => join(ROOT, 'bench', 'out', `replay-${lines}-${nodes}`);

export const nodeId = (i) => `node-${String(i).padStart(5, '0')}`;

/** A canonical heartbeat envelope line (keys sorted, as RFC 8785 writes them) of node `i % nodes`, stamped `ts`. */
export function heartbeatLineAt(seq, i, nodes, ts) {
  const id = nodeId(i % nodes);
  const load = ((i * 7) % 400) / 100;
  return (
    `{"author":"node:${id}","body":{"agent_version":"0.1.0","cloudflare_ok":true,"hostname":"${id}.example","id":"${id}-hb-${i}",` +
    `"metrics":{"disk_total_bytes":100000000000,"disk_used_bytes":${40_000_000_000 + (i % 1000) * 1_000_000},"load":[${load},0.5,0.25],` +
    `"mem_total_bytes":8000000000,"mem_used_bytes":${2_000_000_000 + (i % 997) * 1_000_000},"uptime_s":${86400 + i}},` +
    `"node_id":"${id}","os_profile":"debian","services_ok":true,"timestamp":"${ts}","vaultmesh_root":"/var/lib/vaultmesh"},` +
    `"id":"${id}-hb-${i}","kind":"heartbeat","node_id":"${id}","seq":${seq},"ts":"${ts}","v":1}`
  );
}

/** The replay log's heartbeats: each node every 30 s from T0. */
function heartbeatLine(seq, i, nodes) {
  const n = i % nodes;
  return heartbeatLineAt(seq, i, nodes, new Date(T0 + Math.floor(i / nodes) * 30_000 + (n % 30_000)).toISOString());
}

async function writeLines(file, n, lineOf) {
  const out = createWriteStream(file);
  let chunk = [];
  for (let i = 0; i < n; i++) {
    chunk.push(lineOf(i));
    if (chunk.length === 2000) {
      if (!out.write(chunk.join('\n') + '\n')) await once(out, 'drain');
      chunk = [];
    }
  }
  if (chunk.length) out.write(chunk.join('\n') + '\n');
  out.end();
  await once(out, 'finish');
}

/**
 * Generates the journal set once (in a temp dir renamed into place, so an interrupted run is not reused). Returns
 * `{ dir, generated }`.
 */
export async function ensureReplayLog({ lines, nodes, log = () => {} }) {
  const dir = replayLogDir(lines, nodes);
  if (existsSync(join(dir, 'heartbeats.jsonl'))) return { dir, generated: false };
  const { canonicalJson } = await dist('protocol/canonical-json.js');
  const { generateKeyPair } = await dist('protocol/keys.js');
  // The template must produce exactly what the journal writes.
  const sample = heartbeatLine(nodes + 1, 12345, nodes);
  if (canonicalJson(JSON.parse(sample)) !== sample) throw new Error('heartbeatLine is not canonical JSON');
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const key = generateKeyPair(); // one key for all: replay never verifies signatures
  const ts = new Date(T0 - 3_600_000).toISOString();
  await writeLines(join(tmp, 'events.jsonl'), nodes, (i) =>
    canonicalJson({
      v: 1,
      id: `enroll-${i}`,
      seq: i + 1,
      ts,
      kind: 'enrollment',
      node_id: nodeId(i),
      author: `node:${nodeId(i)}`,
      body: { action: 'request', token_id: 'bench', hostname: `${nodeId(i)}.example`, os_profile: 'debian', public_key: key.publicKeyHex, key_id: key.keyId, agent_version: '0.1.0', facts: {}, auto_approved: true },
    }),
  );
  await writeLines(join(tmp, 'heartbeats.jsonl'), lines, (i) => heartbeatLine(nodes + 1 + i, i, nodes));
  mkdirSync(join(ROOT, 'bench', 'out'), { recursive: true });
  renameSync(tmp, dir);
  log(`generated ${dir}`);
  return { dir, generated: true };
}
