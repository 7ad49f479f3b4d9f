// GET /events on a real server, where envelopes are written straight to the Node response once the headers and the
// hello have gone out through the body stream: the hand-over from one path to the other must keep every envelope,
// once, in seq order — for a client that connects while commits are landing and for one resuming from the ring.
import { describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { request } from 'undici';
import { cleanupAfterEach, enrolledNode, heartbeatBody, openSse, startTestCenter, tempDir } from '../../test/helpers.js';

const onCleanup = cleanupAfterEach();

describe('GET /events on a real server', () => {
  it('under concurrent commits every client gets every envelope once, in seq order, resumed ones first', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { rateLimit: false });
    onCleanup(() => c.close());
    const n = await enrolledNode(c, 'n1');
    const auth = { authorization: `Bearer ${c.adminToken}` };
    const burst = async (k: number) => (await Promise.all(Array.from({ length: k }, () => n.send('POST', '/api/agent/heartbeat', heartbeatBody('n1'))))).map((r) => {
      expect(r.status).toBe(200);
      return r.json.seq as number;
    });
    const live = await openSse(`${c.url}/events?kind=heartbeat`, auth);
    const first = (await burst(40)).sort((a, b) => a - b);
    // Clients connecting while the next burst commits: one fresh, one resuming from the middle of the first burst
    // (its resumed envelopes are queued before its headers are written).
    const from = first[19]!;
    const [second, fresh, resumed] = await Promise.all([burst(120), openSse(`${c.url}/events?kind=heartbeat`, auth), openSse(`${c.url}/events?kind=heartbeat`, { ...auth, 'last-event-id': String(from) })]);
    const all = [...first, ...second].sort((a, b) => a - b);
    const last = String(all.at(-1));
    const ids = async (sse: Awaited<ReturnType<typeof openSse>>) => {
      await sse.waitFor((e) => e.id === last);
      return sse.events.filter((e) => e.event === 'heartbeat').map((e) => Number(e.id));
    };
    expect(await ids(live)).toEqual(all);
    expect(await ids(resumed)).toEqual(all.filter((s) => s > from));
    const freshIds = await ids(fresh);
    // Whatever the fresh client saw starts somewhere in the second burst and then misses nothing.
    expect(freshIds).toEqual(all.slice(all.indexOf(freshIds[0]!)));
    for (const sse of [live, fresh, resumed]) await sse.close();
  });

  it('drops a client that stops reading, and the others go on', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { rateLimit: false, sseMaxQueue: 64 });
    onCleanup(() => c.close());
    const n = await enrolledNode(c, 'n1');
    const auth = { authorization: `Bearer ${c.adminToken}` };
    const reader = await openSse(`${c.url}/events?kind=heartbeat`, auth);
    // A client that reads the response head and then nothing: its socket buffers fill, then its queue overflows.
    const u = new URL(c.url);
    const stalled = connect({ host: u.hostname, port: Number(u.port) });
    onCleanup(() => stalled.destroy());
    await new Promise<void>((resolve) => {
      stalled.write(`GET /events HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${c.adminToken}\r\n\r\n`);
      stalled.once('data', () => {
        stalled.pause();
        resolve();
      });
    });
    expect(await metricsText(c)).toContain('vaultmesh_sse_clients 2\n');
    // ≈ 13 KB per message (as in test/reliability/slow-consumers.ts): a few hundred fill the loopback buffers.
    const services = Object.fromEntries(Array.from({ length: 64 }, (_, k) => [`${'u'.repeat(110)}-${k}.service`, 'active-running-since-boot-ok-123']));
    const big = { ...heartbeatBody('n1'), vaultmesh_root: `/var/lib/vaultmesh/${'p'.repeat(3900)}`, services };
    const seqs: number[] = [];
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && seqs.length < 2000) {
      const r = await n.send('POST', '/api/agent/heartbeat', { ...big, timestamp: new Date().toISOString() });
      expect(r.status).toBe(200);
      seqs.push(r.json.seq as number);
      if (seqs.length % 20 === 0 && (await metricsText(c)).includes('vaultmesh_sse_clients 1\n')) break;
    }
    expect(await metricsText(c)).toContain('vaultmesh_sse_clients 1\n');
    await reader.waitFor((e) => e.id === String(Math.max(...seqs)));
    expect(reader.events.filter((e) => e.event === 'heartbeat').map((e) => Number(e.id))).toEqual(seqs.sort((a, b) => a - b));
    await reader.close();
  }, 30_000);
});

async function metricsText(c: { url: string; adminToken: string }): Promise<string> {
  return (await request(`${c.url}/metrics`, { headers: { authorization: `Bearer ${c.adminToken}` } })).body.text();
}
