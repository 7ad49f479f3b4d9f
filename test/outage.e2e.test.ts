/**
 * Offline and rejoin with real processes: a vaultmesh-agent reaches its center through a loopback proxy; the proxy
 * cuts it off long enough for the center to declare it offline (small intervals), the center restarts meanwhile
 * (no second `offline`), and when the path is back the agent delivers its buffered outbox and the center journals
 * the `rejoin` with the gap and the count. Both reach a webhook receiver, the SSE stream and the console timeline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../protocol/envelope.js';
import type { OfflineBody, RejoinBody } from '../protocol/outage-events.js';
import { tempDir } from './helpers.js';
import { AGENT_BIN, spawnCenter, type CenterProcess } from './process-helpers.js';
import { startTcpProxy } from './tcp-proxy.js';
import { openStream } from './replicas.js';

const children: ChildProcess[] = [];
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SECRET = 'outage-e2e-webhook-secret';

/** A port nothing listens on: the proxy pointed there closes every connection (the agent sees the center gone). */
function deadPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createTcpServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A webhook receiver that checks each delivery's signature and keeps the envelopes. */
async function webhookReceiver(): Promise<{ url: string; got: Array<{ event: string; envelope: Envelope }>; server: Server }> {
  const got: Array<{ event: string; envelope: Envelope }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d));
    req.on('end', () => {
      const ts = String(req.headers['x-vaultmesh-timestamp']);
      const sig = `sha256=${createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex')}`;
      if (sig !== req.headers['x-vaultmesh-signature']) {
        res.writeHead(401).end();
        return;
      }
      got.push({ event: String(req.headers['x-vaultmesh-event']), envelope: (JSON.parse(body) as { envelope: Envelope }).envelope });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, got, server };
}

function journal(dir: string, name: string): Envelope[] {
  const f = join(dir, 'logs', `${name}.jsonl`);
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Envelope);
}

async function until(pred: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('offline and rejoin (real center, real agent)', () => {
  it('journals one offline per outage (across a restart) and a rejoin with the gap and the buffered entries delivered', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const hooks = await webhookReceiver();
    cleanups.push(() => new Promise<void>((r) => hooks.server.close(() => r())));
    // Heartbeats every second, offline after 5 s of silence (room for a loaded machine's late beats), swept every second.
    const env = { VAULTMESH_STALE_CRIT_AFTER: '5', VAULTMESH_ATTENTION_CHECK_SECS: '1', VAULTMESH_WEBHOOK_URLS: hooks.url, VAULTMESH_WEBHOOK_SECRET: SECRET };
    const args = ['--log-dir', join(t.dir, 'logs'), '--state-dir', join(t.dir, 'state'), '--auto-approve', '--heartbeat-secs', '1'];
    const start = async () => {
      const c = await spawnCenter(args, env);
      children.push(c.child);
      return c;
    };
    let cc: CenterProcess = await start();
    const port = () => Number(new URL(cc.url).port);
    const proxy = await startTcpProxy(port());
    cleanups.push(() => proxy.close());
    const token = readFileSync(join(t.dir, 'state', 'admin.token'), 'utf8').trim();
    const auth = { authorization: `Bearer ${token}` };
    const jt = await fetch(`${cc.url}/api/join-tokens`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
    const joinToken = ((await jt.json()) as { token: string }).token;

    const stateDir = join(t.dir, 'agent');
    const agent = spawn(
      process.execPath,
      [AGENT_BIN, '--settings', '/nonexistent', '--cc-url', `http://127.0.0.1:${proxy.port}`, '--state-dir', stateDir, '--root', t.dir, '--node-id', 'ob-1', '--join-token', joinToken, '--heartbeat-secs', '1', '--cloudflared-check', 'none', '--os-profile', 'debian'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(agent);
    let agentOut = '';
    agent.stdout!.on('data', (d: Buffer) => (agentOut += d));
    agent.stderr!.on('data', (d: Buffer) => (agentOut += d));
    const heartbeats = () => journal(t.dir, 'heartbeats').filter((e) => e.node_id === 'ob-1');
    const events = (kind: string) => journal(t.dir, 'events').filter((e) => e.kind === kind && e.node_id === 'ob-1');
    await until(() => heartbeats().length >= 3, 20_000, () => `first heartbeats\n${agentOut}`);
    expect(events('offline')).toEqual([]);

    // Cut off: the agent buffers, the center declares it offline once the silence passes 5 s.
    proxy.point(await deadPort());
    await until(() => events('offline').length > 0, 20_000, () => `the offline envelope\n${cc.output()}`);
    const last = heartbeats().at(-1)!;
    const offline = events('offline')[0]! as Envelope & { body: OfflineBody };
    expect(offline.id).toBe(`offline:ob-1:${last.seq}`);
    expect(offline.body).toMatchObject({ last_heartbeat_seq: last.seq, last_heartbeat_ts: last.ts, threshold_s: 5, declared_late: false });
    expect(offline.body.silent_s).toBeGreaterThan(5);
    expect(offline.body.silent_s).toBeLessThan(30);

    // The console's attention panel and node detail say since when it is offline and which heartbeat was its last.
    const attention = (await (await fetch(`${cc.url}/console?node=ob-1`, { headers: auth })).text()).replace(/\u00a0/g, ' ');
    expect(attention).toContain(`offline since ${offline.ts.slice(0, 10)} ${offline.ts.slice(11, 19)} UTC, last heartbeat seq ${last.seq}`);

    // A restart while the node is offline (the close writes a state snapshot, the start loads it): no second offline.
    cc.child.kill('SIGTERM');
    expect(await cc.exited).toBe(0);
    cc = await start();
    expect(cc.output()).toMatch(/loaded the state snapshot/);
    await new Promise((r) => setTimeout(r, 3000)); // three sweeps
    expect(events('offline')).toHaveLength(1);

    const outbox = join(stateDir, 'outbox.jsonl');
    const queued = () => (existsSync(outbox) ? readFileSync(outbox, 'utf8').split('\n').filter(Boolean).length : 0);
    await until(() => queued() >= 4, 20_000, () => `4 buffered heartbeats\n${agentOut}`);
    const buffered = queued();
    // The cut can land between the center storing a heartbeat and the agent reading the answer: the agent buffers it
    // and delivers it again with the backlog (answered as a duplicate), and the documented count includes it.
    const storedBefore = new Set(heartbeats().map((h) => h.id));
    const redelivered = readFileSync(outbox, 'utf8')
      .split('\n')
      .filter(Boolean)
      .filter((l) => storedBefore.has((JSON.parse(l) as { body: { id: string } }).body.id)).length;

    // Back: the agent delivers its backlog; the center journals the rejoin once the agent reports it drained.
    proxy.point(port());
    await until(() => events('rejoin').length > 0, 40_000, () => `the rejoin envelope\n${agentOut}\n${cc.output()}`);
    const rejoin = events('rejoin')[0]! as Envelope & { body: RejoinBody };
    const after = heartbeats().filter((h) => h.seq > last.seq);
    const first = after[0]!;
    // The backlog as journaled: the heartbeats from the first after the outage to the one that reported it empty.
    const drainedAt = after.findIndex((h) => (h.body as { outbox?: { queued: number } }).outbox?.queued === 0);
    expect(drainedAt).toBeGreaterThanOrEqual(0);
    expect(rejoin.id).toBe(`rejoin:ob-1:${offline.seq}`);
    expect(rejoin.seq).toBeGreaterThan(after[drainedAt]!.seq);
    expect(rejoin.body).toEqual({
      offline_seq: offline.seq,
      last_heartbeat_seq: last.seq,
      last_heartbeat_ts: last.ts,
      first_heartbeat_seq: first.seq,
      first_heartbeat_ts: first.ts,
      gap_s: (Date.parse(first.ts) - Date.parse(last.ts)) / 1000,
      delivered: drainedAt + 1 + redelivered,
      outbox: 'drained',
    });
    expect(rejoin.body.delivered).toBeGreaterThanOrEqual(buffered);
    expect(rejoin.body.gap_s).toBeGreaterThan(offline.body.silent_s);
    // Each buffered heartbeat is stored once (ids), and nothing more is declared afterwards.
    const ids = heartbeats().map((h) => h.id);
    expect(new Set(ids).size).toBe(ids.length);
    await new Promise((r) => setTimeout(r, 2000));
    expect(events('offline')).toHaveLength(1);
    expect(events('rejoin')).toHaveLength(1);

    // Webhooks: both, signed, as journaled.
    await until(() => hooks.got.some((g) => g.event === 'rejoin'), 20_000, () => `webhook deliveries: ${hooks.got.map((g) => g.event).join(',')}`);
    const delivered = hooks.got.filter((g) => g.event === 'offline' || g.event === 'rejoin');
    expect(delivered.map((g) => [g.event, g.envelope.seq])).toEqual([
      ['offline', offline.seq],
      ['rejoin', rejoin.seq],
    ]);
    expect(delivered[1]!.envelope.body).toEqual(rejoin.body);

    // SSE: event names `offline` and `rejoin`, resumed from before the outage.
    const stream = await openStream(cc.url, token, offline.seq - 1);
    await stream.waitFor(rejoin.seq);
    await stream.close();
    expect(stream.events).toEqual(expect.arrayContaining(['offline', 'rejoin']));

    // The console: the node's timeline reads both rows.
    const page = await fetch(`${cc.url}/console?node=ob-1`, { headers: auth });
    expect(page.status).toBe(200);
    const html = (await page.text()).replace(/\u2011/g, '-').replace(/\u00a0/g, ' ');
    const clock = last.ts.slice(11, 19);
    expect(html).toContain(`offline — last heartbeat ${last.ts.slice(0, 10)} ${clock} UTC (seq ${last.seq})`);
    expect(html).toMatch(new RegExp(`rejoined after [\\dhms ]+, ${rejoin.body.delivered} buffered entries delivered`));
    // And the node's API view has no open outage any more.
    const node = (await (await fetch(`${cc.url}/api/nodes/ob-1`, { headers: auth })).json()) as { outage: unknown; status: string };
    expect(node.outage).toBeNull();
    console.log(`offline after ${offline.body.silent_s} s of silence; rejoined after ${rejoin.body.gap_s} s with ${rejoin.body.delivered} buffered entries delivered (${buffered} seen queued)`);

    // A second outage that happens while the center is down: declared at its next start, marked late, then a rejoin.
    cc.child.kill('SIGTERM');
    expect(await cc.exited).toBe(0);
    const lastBefore = heartbeats().at(-1)!;
    await new Promise((r) => setTimeout(r, 6500)); // past the 5 s threshold with no center
    cc = await start(); // on a new port: the proxy still points at the old one, so the agent cannot reach it yet
    await until(() => events('offline').length === 2, 20_000, () => `the late offline envelope\n${cc.output()}`);
    const late = events('offline')[1]! as Envelope & { body: OfflineBody };
    expect(late.body).toMatchObject({ last_heartbeat_seq: lastBefore.seq, last_heartbeat_ts: lastBefore.ts, declared_late: true });
    expect(late.body.silent_s).toBeGreaterThan(6.5);
    proxy.point(port());
    await until(() => events('rejoin').length === 2, 40_000, () => `the second rejoin\n${agentOut}`);
    const back = heartbeats().filter((h) => h.seq > lastBefore.seq);
    const drained2 = back.findIndex((h) => (h.body as { outbox?: { queued: number } }).outbox?.queued === 0);
    expect(events('rejoin')[1]!.body).toMatchObject({ offline_seq: late.seq, last_heartbeat_seq: lastBefore.seq, first_heartbeat_seq: back[0]!.seq, delivered: drained2 + 1, outbox: 'drained' });
    expect(drained2 + 1).toBeGreaterThanOrEqual(4); // at least the 6.5 s of heartbeats buffered while the center was down
    expect(events('offline')).toHaveLength(2);

    agent.kill('SIGTERM');
    cc.child.kill('SIGTERM');
    await cc.exited;
  }, 150_000);
});
