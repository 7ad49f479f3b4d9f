import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { httpSend } from './http-request.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function serve(handler: Parameters<typeof createServer>[1], socketPath?: string): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => (socketPath ? s.listen(socketPath, r) : s.listen(0, '127.0.0.1', r)));
  const addr = s.address();
  return typeof addr === 'object' && addr ? `http://127.0.0.1:${addr.port}` : 'http://localhost';
}

describe('httpSend', () => {
  it('sends method, headers and body, and returns status, headers and the UTF-8 text', async () => {
    const url = await serve((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method: req.method, path: req.url, auth: req.headers.authorization, length: req.headers['content-length'], body, word: 'grüß' }));
      });
    });
    const r = await httpSend(`${url}/api/x?a=1`, { method: 'POST', headers: { authorization: 'Bearer t' }, body: '{"ü":1}', timeoutMs: 5000 });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.text)).toEqual({ method: 'POST', path: '/api/x?a=1', auth: 'Bearer t', length: '8', body: '{"ü":1}', word: 'grüß' });
  });

  it('goes over a Unix socket with the URL path and Host', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vm-http-'));
    try {
      const sock = join(dir, 's.sock');
      await serve((req, res) => res.end(`${req.headers.host} ${req.url}`), sock);
      const r = await httpSend('http://localhost/api/nodes?x=2', { method: 'GET', headers: {}, timeoutMs: 5000, socketPath: sock });
      expect(r.text).toBe('localhost /api/nodes?x=2');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a missing answer and a stalled body with the timeout codes', async () => {
    const silent = await serve(() => undefined);
    await expect(httpSend(`${silent}/`, { method: 'GET', headers: {}, timeoutMs: 150 })).rejects.toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
    const stalled = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"partial":');
    });
    await expect(httpSend(`${stalled}/`, { method: 'GET', headers: {}, timeoutMs: 150 })).rejects.toMatchObject({ code: 'UND_ERR_BODY_TIMEOUT' });
  });

  it('passes connection errors through with their code', async () => {
    const url = await serve((_req, res) => res.end());
    const port = new URL(url).port;
    await new Promise((r) => servers.pop()!.close(r));
    await expect(httpSend(`http://127.0.0.1:${port}/`, { method: 'GET', headers: {}, timeoutMs: 2000 })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
