// GET /events on a real server, where envelopes are written straight to the Node response once the headers and the
// hello have gone out through the body stream: the hand-over from one path to the other must keep every envelope,
// once, in seq order — for a client that connects while commits are landing and for one resuming from the ring.
import { describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { request } from 'undici';
import { cleanupAfterEach, enrolledNode, heartbeatBody, openSse, startTestCenter, tempDir } from '../../test/helpers.js';
import { signRequest } from '../../protocol/request-signing.js';

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

  it("a commit's POST is answered before its envelope is fanned out to the streams", async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { rateLimit: false, sseMaxPerIdentity: 64 });
    onCleanup(() => c.close());
    const n = await enrolledNode(c, 'n1');
    const u = new URL(c.url);
    // Every byte's arrival, in the order this process sees it: a socket that became readable first is read first.
    const arrivals: string[] = [];
    const clients = Array.from({ length: 20 }, (_, i) => {
      const sock = connect({ host: u.hostname, port: Number(u.port) });
      onCleanup(() => sock.destroy());
      let text = '';
      sock.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        for (const m of d.toString('latin1').matchAll(/id: (\d+)\n/g)) arrivals.push(`sse${i}:${m[1]}`);
      });
      sock.write(`GET /events?kind=heartbeat HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${c.adminToken}\r\n\r\n`);
      return { hello: () => text.includes('event: hello') };
    });
    const deadline = Date.now() + 10_000;
    while (clients.some((cl) => !cl.hello()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(clients.every((cl) => cl.hello())).toBe(true);
    for (let k = 0; k < 3; k++) {
      const body = JSON.stringify(heartbeatBody('n1'));
      const headers = { ...signRequest({ method: 'POST', path: '/api/agent/heartbeat', nodeId: 'n1', body }, n.key), 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
      const post = connect({ host: u.hostname, port: Number(u.port) });
      onCleanup(() => post.destroy());
      const answer = await new Promise<string>((resolve, reject) => {
        let text = '';
        post.on('data', (d: Buffer) => {
          text += d.toString('latin1');
          const seq = /"seq":(\d+)/.exec(text)?.[1];
          if (seq) {
            arrivals.push(`post:${seq}`);
            resolve(seq);
          }
        });
        post.on('error', reject);
        post.write(`POST /api/agent/heartbeat HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n${Object.entries(headers).map(([h, v]) => `${h}: ${v}\r\n`).join('')}\r\n${body}`);
      });
      const until = Date.now() + 10_000;
      while (arrivals.filter((a) => a.endsWith(`:${answer}`)).length < 21 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      const forSeq = arrivals.filter((a) => a.endsWith(`:${answer}`));
      expect(forSeq).toHaveLength(21);
      expect(forSeq[0]).toBe(`post:${answer}`);
    }
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

  it('the body is well-formed HTTP/1.1 chunks (each message framed once, written to the socket), raw bytes for HTTP/1.0, and ends with the last chunk', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { rateLimit: false });
    onCleanup(() => c.close());
    const n = await enrolledNode(c, 'n1');
    const created = await c.api('POST', '/api/tokens', { name: 'reader', scopes: ['events:read'] });
    expect(created.status).toBe(201);
    const { token, token_id } = created.json as { token: string; token_id: string };
    const u = new URL(c.url);
    /** A raw client keeping every byte the server sends. */
    const rawClient = (version: '1.1' | '1.0') => {
      const sock = connect({ host: u.hostname, port: Number(u.port) });
      onCleanup(() => sock.destroy());
      let bytes = Buffer.alloc(0);
      let closed = false;
      sock.on('data', (d: Buffer) => (bytes = Buffer.concat([bytes, d])));
      sock.on('close', () => (closed = true));
      sock.write(`GET /events?kind=heartbeat HTTP/${version}\r\nHost: ${u.host}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      return { bytes: () => bytes, closed: () => closed };
    };
    const until = async (ok: () => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!ok() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(ok()).toBe(true);
    };
    const v11 = rawClient('1.1');
    const v10 = rawClient('1.0');
    for (const cl of [v11, v10]) await until(() => cl.bytes().includes('event: hello'));
    const seqs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await n.send('POST', '/api/agent/heartbeat', heartbeatBody('n1'));
      expect(r.status).toBe(200);
      seqs.push(r.json.seq as number);
    }
    for (const cl of [v11, v10]) await until(() => cl.bytes().includes(`id: ${seqs.at(-1)}\n`));
    // Revoking the token ends both streams: `event: end`, then the end of the body (HTTP/1.0: of the connection).
    expect((await c.api('DELETE', `/api/tokens/${token_id}`)).status).toBe(200);
    // (The lease is checked before the next message, or at the next idle check.)
    expect((await n.send('POST', '/api/agent/heartbeat', heartbeatBody('n1'))).status).toBe(200);
    await until(() => v11.bytes().includes('event: end') && v11.bytes().subarray(-5).toString('latin1') === '0\r\n\r\n');
    await until(() => v10.closed());

    // Strict de-chunking: a size line, exactly that many bytes, CRLF; the last chunk has size 0 and nothing follows.
    const all11 = v11.bytes();
    const headEnd = all11.indexOf('\r\n\r\n');
    expect(all11.subarray(0, headEnd).toString('latin1')).toMatch(/transfer-encoding: chunked/i);
    let rest = all11.subarray(headEnd + 4);
    const body: Buffer[] = [];
    for (;;) {
      const lineEnd = rest.indexOf('\r\n');
      expect(lineEnd).toBeGreaterThan(0);
      const size = Number.parseInt(rest.subarray(0, lineEnd).toString('latin1'), 16);
      expect(Number.isInteger(size)).toBe(true);
      if (size === 0) {
        expect(rest.subarray(lineEnd).toString('latin1')).toBe('\r\n\r\n');
        break;
      }
      body.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      expect(rest.subarray(lineEnd + 2 + size, lineEnd + 4 + size).toString('latin1')).toBe('\r\n');
      rest = rest.subarray(lineEnd + 4 + size);
    }
    const all10 = v10.bytes();
    expect(all10.subarray(0, all10.indexOf('\r\n\r\n')).toString('latin1')).not.toMatch(/transfer-encoding/i);
    for (const text of [Buffer.concat(body).toString('utf8'), all10.subarray(all10.indexOf('\r\n\r\n') + 4).toString('utf8')]) {
      expect(text.startsWith('event: hello\n')).toBe(true);
      expect([...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))).toEqual(seqs);
      expect(text).toMatch(/\n\nevent: end\ndata: \{"reason":"[a-z_]+"\}\n\n$/);
    }
  });
});

async function metricsText(c: { url: string; adminToken: string }): Promise<string> {
  return (await request(`${c.url}/metrics`, { headers: { authorization: `Bearer ${c.adminToken}` } })).body.text();
}
