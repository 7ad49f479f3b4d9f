/**
 * Slow and dead SSE consumers: 200 clients on `GET /events`, a share of which never read after the handshake.
 * Heartbeats (with padded bodies, so the dead clients' socket buffers fill) flow for a while; the center's RSS must
 * stay bounded (it drops a client whose bounded queue overflows instead of buffering for it), and the live clients
 * must keep receiving every heartbeat within the latency target.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain ESM benchmark helpers (no types)
import { openSseClients } from '../../bench/lib/sse-clients.mjs';
import { enrollNode, rssMbOf, sendHeartbeat, startReliabilityCenter } from './harness.js';

export interface SlowConsumersResult {
  clients: number;
  dead: number;
  heartbeats: number;
  rssBeforeMb: number;
  rssPeakMb: number;
  rssAfterMb: number;
  liveMissed: number;
  liveP50Ms: number;
  liveP99Ms: number;
  deadDropped: number;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! : NaN;
};

export async function slowConsumersScenario(opts: { clients?: number; deadShare?: number; heartbeats?: number; gapMs?: number } = {}): Promise<SlowConsumersResult> {
  const n = opts.clients ?? 200;
  const deadEvery = Math.round(1 / (opts.deadShare ?? 0.25));
  const dir = mkdtempSync(join(tmpdir(), 'vm-slowsse-'));
  // A small per-client queue so dead clients overflow quickly; the default (1024) behaves the same, later.
  const cc = await startReliabilityCenter(dir, [], { VAULTMESH_SSE_MAX_QUEUE: '64' });
  const clients: any[] = [];
  try {
    const node = await enrollNode(cc, 'sse-node');
    const rssBeforeMb = rssMbOf(cc.pid);
    clients.push(...(await openSseClients(cc.url, cc.token, n, { parallel: 50, maxMs: 30_000, read: (i: number) => i % deadEvery !== 0 })));
    const live = clients.filter((_, i) => i % deadEvery !== 0);
    const dead = clients.filter((_, i) => i % deadEvery === 0);
    // ≈ 13 KB per SSE message (a long root path and 64 services with long unit names, all within the schema), so
    // a few hundred messages exceed what loopback socket buffers can absorb for a client that never reads.
    const pad = 'p'.repeat(3900);
    const services = Object.fromEntries(Array.from({ length: 64 }, (_, k) => [`${'u'.repeat(110)}-${k}.service`, 'active-running-since-boot-ok-123']));
    const sent: Array<{ seq: number; ackAt: number }> = [];
    let rssPeakMb = rssBeforeMb;
    const total = opts.heartbeats ?? 400;
    for (let i = 0; i < total; i++) {
      const r = await sendHeartbeat(cc.url, node, { id: `slow-${i}`, vaultmesh_root: `/var/lib/vaultmesh/${pad}`, services });
      if (r.status !== 200) throw new Error(`heartbeat ${r.status}: ${JSON.stringify(r.json)}`);
      sent.push({ seq: r.json.seq, ackAt: performance.timeOrigin + performance.now() });
      if (i % 20 === 0) rssPeakMb = Math.max(rssPeakMb, rssMbOf(cc.pid));
      if (opts.gapMs) await new Promise((res) => setTimeout(res, opts.gapMs));
    }
    const last = sent.at(-1)!.seq;
    const until = Date.now() + 3000;
    while (Date.now() < until && live.some((c: any) => !c.seqs.has(last))) await new Promise((res) => setTimeout(res, 20));
    const lat: number[] = [];
    let missed = 0;
    for (const { seq, ackAt } of sent) {
      for (const c of live) {
        const t = c.seqs.get(seq);
        if (t === undefined) missed++;
        else lat.push(Math.max(0, t - ackAt));
      }
    }
    const rssAfterMb = rssMbOf(cc.pid);
    // A dead client the center dropped sees its connection end once it reads again: resume reading and count closes.
    for (const c of dead) c.sock.resume();
    await new Promise((res) => setTimeout(res, 1000));
    return {
      clients: n,
      dead: dead.length,
      heartbeats: total,
      rssBeforeMb,
      rssPeakMb: Math.max(rssPeakMb, rssAfterMb),
      rssAfterMb,
      liveMissed: missed,
      liveP50Ms: quantile(lat, 0.5),
      liveP99Ms: quantile(lat, 0.99),
      deadDropped: dead.filter((c: any) => c.closed).length,
    };
  } finally {
    for (const c of clients) c.close();
    await cc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
