/**
 * A crash round under mixed load (extends test/crash-round.ts): signed heartbeats, operator notes
 * (POST /api/events) and signed scan reports (POST /api/agent/scan, ledger material) run concurrently against a
 * real center, which is killed with SIGKILL at a random moment and restarted. Then: every acknowledged envelope is
 * in its journal exactly once, no journal keeps a torn line (it was set aside), replay succeeded (the center came
 * back with the same heartbeat count), and `vaultmesh ledger verify` passes on the scans ledger after a clean stop.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { ledgerVerify } from '../../cli/ledger.js';
import { keyPairFromSeed, type KeyPair } from '../../protocol/keys.js';
import { signRequest } from '../../protocol/request-signing.js';
import { heartbeatBody } from '../helpers.js';
import { adminCall, enrollNode, startReliabilityCenter } from './harness.js';

export interface MixedRoundResult {
  acked: { heartbeat: number; note: number; scan: number };
  lost: number;
  duplicated: number;
  tornTails: number;
  ledger: { ok: boolean; tree_size: number; problems: string[] };
  journalProblems: string[];
}

const transportError = (err: unknown) => {
  const code = (err as { code?: string }).code ?? '';
  return code.startsWith('UND_ERR') || code === 'ECONNRESET' || code === 'ECONNREFUSED' || code === 'EPIPE';
};

function scanReport(nodeId: string, id: string) {
  const now = new Date().toISOString();
  return { id, node_id: nodeId, started_at: now, finished_at: now, agent_version: '0.1.0', trigger: 'schedule', findings: [], summary: { critical: 0, high: 0, medium: 0, low: 0, info: 0, checks_run: 3, checks_failed: 0 } };
}

/** Ids per kind across every journal segment in the log dir (torn and quarantined files excluded). */
function journalIds(logDir: string): { ids: Map<string, number>; problems: string[]; heartbeats: number } {
  const ids = new Map<string, number>();
  const problems: string[] = [];
  let heartbeats = 0;
  for (const f of readdirSync(logDir).filter((f) => f.endsWith('.jsonl'))) {
    const text = readFileSync(join(logDir, f), 'utf8');
    if (text.length && !text.endsWith('\n')) problems.push(`${f} ends with a torn line after restart`);
    for (const line of text.split('\n')) {
      if (!line) continue;
      let e;
      try {
        e = JSON.parse(line);
      } catch {
        problems.push(`${f}: unparseable line ${line.slice(0, 80)}`);
        continue;
      }
      if (e.kind === 'heartbeat') heartbeats++;
      ids.set(`${e.kind}:${e.id}`, (ids.get(`${e.kind}:${e.id}`) ?? 0) + 1);
    }
  }
  return { ids, problems, heartbeats };
}

export async function mixedCrashRound(dir: string, round: number, opts: { loadMs?: number } = {}): Promise<MixedRoundResult> {
  const nodeId = 'crash-mixed';
  const keyFile = join(dir, 'node.seed');
  const cc = await startReliabilityCenter(dir);
  let node: { id: string; key: KeyPair };
  if (existsSync(keyFile)) node = { id: nodeId, key: keyPairFromSeed(Buffer.from(readFileSync(keyFile, 'utf8'), 'hex')) };
  else {
    node = await enrollNode(cc, nodeId);
    writeFileSync(keyFile, Buffer.from(node.key.seed).toString('hex'));
  }
  const acked: Array<{ kind: 'heartbeat' | 'note' | 'scan'; id: string }> = [];
  let stop = false;
  let n = 0;
  const signed = async (path: string, payload: unknown) => {
    const body = JSON.stringify(payload);
    const res = await request(cc.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...signRequest({ method: 'POST', path, nodeId, body }, node.key) }, body });
    return { status: res.statusCode, text: await res.body.text() };
  };
  const worker = (kind: 'heartbeat' | 'note' | 'scan') => async () => {
    while (!stop) {
      const id = `r${round}-${kind}-${n++}`;
      try {
        let r: { status: number; text: string };
        if (kind === 'heartbeat') r = await signed('/api/agent/heartbeat', heartbeatBody(nodeId, { id }));
        else if (kind === 'scan') r = await signed('/api/agent/scan', scanReport(nodeId, id));
        else {
          const res = await request(`${cc.url}/api/events`, { method: 'POST', headers: { authorization: `Bearer ${cc.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'note', id, node_id: nodeId, body: { text: `crash round ${round} note ${id}` } }) });
          r = { status: res.statusCode, text: await res.body.text() };
        }
        if (r.status === 200 || r.status === 201) acked.push({ kind, id });
        else if (!stop) throw new Error(`${kind}: unexpected ${r.status}: ${r.text}`);
      } catch (err) {
        if (!stop && !transportError(err)) throw err;
        return; // the center died under us: that request was never acknowledged
      }
    }
  };
  const kinds = [...Array<'heartbeat'>(6).fill('heartbeat'), 'note', 'note', 'scan', 'scan'] as const;
  const workers = kinds.map((k) => worker(k)());
  await new Promise((r) => setTimeout(r, 50 + Math.random() * (opts.loadMs ?? 400)));
  cc.child.kill('SIGKILL');
  stop = true;
  const settled = await Promise.allSettled(workers);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  await cc.exited;

  const cc2 = await startReliabilityCenter(dir);
  let journal: ReturnType<typeof journalIds>;
  try {
    const torn = (cc2.output().match(/torn last line/g) ?? []).length;
    journal = journalIds(cc2.logDir);
    const detail = await adminCall(cc2.url, cc2.token, 'GET', `/api/nodes/${nodeId}`);
    if (detail.json.heartbeat_count !== journal.heartbeats) throw new Error(`replayed state has ${detail.json.heartbeat_count} heartbeats, the journals ${journal.heartbeats}`);
    const lost = acked.filter((a) => !journal.ids.has(`${a.kind}:${a.id}`)).length;
    const duplicated = [...journal.ids.values()].filter((c) => c > 1).length;
    await cc2.stop();
    const verify = await ledgerVerify(cc2.logDir, 'scans', { allowUnsignedTail: true });
    const count = (k: string) => acked.filter((a) => a.kind === k).length;
    return {
      acked: { heartbeat: count('heartbeat'), note: count('note'), scan: count('scan') },
      lost,
      duplicated,
      tornTails: torn,
      ledger: { ok: verify.ok, tree_size: verify.tree_size, problems: verify.problems.map((p) => p.message) },
      journalProblems: journal.problems,
    };
  } finally {
    await cc2.stop();
  }
}
