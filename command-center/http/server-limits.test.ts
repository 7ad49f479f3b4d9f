/**
 * Server limits with real sockets against a real center (and, for the per-address cap, which spares loopback, a
 * server built by the same function with nothing exempt): slow-header sockets are closed after the headers timeout,
 * a body dripped after an early 401 does not keep its socket, connection caps hold, and streams and long-polls live
 * past the request timeouts.
 */
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, enrolledNode, openSse, startTestCenter, tempDir, type TestCenter } from '../../test/helpers.js';
import { createLimitedServer } from './server-limits.js';

const onCleanup = cleanupAfterEach();

async function center(overrides: Record<string, unknown> = {}, opts: { keepaliveMs?: number } = {}): Promise<TestCenter> {
  const t = tempDir();
  onCleanup(t.cleanup);
  const c = await startTestCenter(t.dir, { fsync: 'off', orchestratorTickSecs: 0, ...overrides }, opts);
  onCleanup(() => c.close());
  return c;
}

interface RawSocket {
  socket: Socket;
  data: () => string;
  closed: Promise<number>; // ms after opening
}

function open(port: number): Promise<RawSocket> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => (data += d));
    socket.on('error', () => undefined); // a reset is one way of being closed
    const closed = new Promise<number>((r) => socket.once('close', () => r(performance.now() - t0)));
    socket.once('connect', () => resolve({ socket, data: () => data, closed }));
    socket.once('error', reject);
  });
}

const portOf = (c: TestCenter) => Number(new URL(c.url).port);

describe('server limits', () => {
  it('closes sockets whose headers do not arrive within the headers timeout', async () => {
    const c = await center({ headersTimeoutSecs: 1, requestReceiveTimeoutSecs: 2 });
    const sockets = await Promise.all(Array.from({ length: 50 }, () => open(portOf(c))));
    for (const s of sockets) s.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    const times = await Promise.all(sockets.map((s) => s.closed));
    console.log(`headers timeout 1 s: 50 slow-header sockets closed after ${Math.round(Math.min(...times))}–${Math.round(Math.max(...times))} ms`);
    expect(Math.max(...times)).toBeLessThan(2500);
    expect(Math.min(...times)).toBeGreaterThanOrEqual(900);
    expect(sockets[0]!.data()).toMatch(/^HTTP\/1\.1 408/);
  });

  it('closes the connection when a request is refused while its body is still dripping in', async () => {
    const c = await center();
    const s = await open(portOf(c));
    s.socket.write('POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n');
    const drip = setInterval(() => s.socket.writable && s.socket.write('1\r\n \r\n'), 50);
    onCleanup(() => clearInterval(drip));
    const t0 = performance.now();
    const until = (pred: () => boolean) =>
      new Promise<void>((resolve) => {
        const check = () => (pred() ? resolve() : s.socket.once('data', check));
        check();
      });
    await until(() => /\r\n\r\n/.test(s.data()));
    expect(s.data()).toMatch(/^HTTP\/1\.1 401/);
    expect(s.data()).toMatch(/\r\nconnection: close\r\n/i);
    await s.closed;
    const held = performance.now() - t0;
    console.log(`dripped body after an early 401: socket closed ${Math.round(held)} ms after the answer`);
    expect(held).toBeLessThan(2000);
  });

  it('keeps connections alive for ordinary requests: GETs, and POSTs whose body was read', async () => {
    const c = await center();
    const s = await open(portOf(c));
    const body = '{"kind":"note","body":{"text":"x"}}';
    s.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    s.socket.write(`POST /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${c.adminToken}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    s.socket.write(`POST /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${c.adminToken}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
    s.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise<void>((resolve) => {
      const check = () => ((s.data().match(/HTTP\/1\.1 /g) ?? []).length >= 4 && /"status":"ok"[^]*"status":"ok"/.test(s.data()) ? resolve() : s.socket.once('data', check));
      check();
    });
    expect(s.data().match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 201', 'HTTP/1.1 201', 'HTTP/1.1 200']);
    expect(s.data()).not.toMatch(/connection: close/i);
    s.socket.destroy();
  });

  it('answers 413 to a chunked body over the limit, and closes that connection', async () => {
    const c = await center({ maxBodyBytes: 1024 });
    const s = await open(portOf(c));
    s.socket.write(`POST /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${c.adminToken}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
    const chunk = 'x'.repeat(512);
    const drip = setInterval(() => s.socket.writable && s.socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`), 20);
    onCleanup(() => clearInterval(drip));
    await s.closed;
    expect(s.data()).toMatch(/^HTTP\/1\.1 413[^]*connection: close[^]*"PAYLOAD_TOO_LARGE"/i);
  });

  it('caps connections per client address (loopback exempt by default, so tested with nothing exempt)', async () => {
    const server = createLimitedServer({ headersTimeoutMs: 5000, requestReceiveTimeoutMs: 5000, keepAliveTimeoutMs: 5000, maxConnections: 1000, maxConnectionsPerIp: 3, exempt: () => false }, (_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onCleanup(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
    const port = (server.address() as AddressInfo).port;
    const kept = await Promise.all([open(port), open(port), open(port)]);
    const fourth = await open(port);
    await fourth.closed; // destroyed on arrival
    kept[0]!.socket.destroy();
    await kept[0]!.closed;
    const fifth = await open(port);
    fifth.socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await fifth.closed;
    expect(fifth.data()).toMatch(/^HTTP\/1\.1 200[\s\S]*ok$/);
    for (const k of kept.slice(1)) k.socket.destroy();
  });

  it('spares loopback peers from the per-address cap, not from the total cap', async () => {
    const c = await center({ maxConnectionsPerIp: 2, maxConnections: 4 });
    const sockets = await Promise.all(Array.from({ length: 4 }, () => open(portOf(c))));
    for (const s of sockets) s.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await Promise.all(sockets.map((s) => new Promise<void>((r) => (/\r\n\r\n/.test(s.data()) ? r() : s.socket.once('data', () => r())))));
    for (const s of sockets) expect(s.data()).toMatch(/^HTTP\/1\.1 200/);
    const extra = await open(portOf(c));
    await extra.closed; // the fifth: over maxConnections
    expect(extra.data()).toBe('');
    for (const s of sockets) s.socket.destroy();
  });

  it('lets SSE streams and agent long-polls run past the request timeouts', async () => {
    const c = await center({ headersTimeoutSecs: 1, requestReceiveTimeoutSecs: 1, keepAliveTimeoutSecs: 1, requestTimeoutSecs: 1, commandPollSecs: 3 }, { keepaliveMs: 250 });
    const node = await enrolledNode(c, 'web-01');
    const sse = await openSse(`${c.url}/events`, { authorization: `Bearer ${c.adminToken}` });
    onCleanup(() => sse.close());
    await sse.waitFor((e) => e.event === 'hello');
    const t0 = performance.now();
    const poll = await node.send('GET', '/api/agent/commands?wait=3');
    expect(poll.status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThan(2500); // held past every 1 s timeout, answered normally
    const note = await c.api('POST', '/api/events', { kind: 'note', body: { text: 'past the timeouts' } });
    expect(note.status).toBe(201);
    await sse.waitFor((e) => e.event === 'note');
    expect(sse.closed).toBe(false);
    expect(sse.comments.filter((k) => k === 'keepalive').length).toBeGreaterThanOrEqual(8);
  });
});

describe('server limit settings', () => {
  it('have their defaults', async () => {
    const c = await center();
    expect([c.config.headersTimeoutSecs, c.config.requestReceiveTimeoutSecs, c.config.keepAliveTimeoutSecs, c.config.maxConnections, c.config.maxConnectionsPerIp]).toEqual([10, 60, 5, 20_000, 64]);
  });
});
