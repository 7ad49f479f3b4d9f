/**
 * A log dir written by a real center, for the tests of everything that reads journals (`logs view|stats`, the
 * console's feed and timelines): the shapes in it are the ones the center writes, not ones a test invented.
 *
 * `generateFleetFixture()` starts a center on port 0 with its own clock (a fixed offset from real time that the
 * generator moves forward, so heartbeats are 30 s apart and a command can outlive its TTL without waiting), and
 * drives it over HTTP the way agents, operators and bots do:
 * - join tokens (one revoked unused), three nodes enrolled with signed requests; web-1 and web-2 approved, db-1
 *   approved and later revoked, edge-1 rejected;
 * - signed heartbeats every 30 s (one missed beat on web-2; web-2's disk filling up), scans with findings;
 * - commands ending in each receipt status (succeeded, failed, rejected, expired), signed receipts posted like
 *   node-agent/command-runner.ts does, a `sovereign-scan` answered with a scan report, and one command nobody
 *   answers that the center expires itself;
 * - web-2 rotates its node key after its heartbeats (a `node_key` envelope) and signs with the new key after that;
 * - notes, incidents (acknowledged, resolved, left open), tags, an API token created and revoked, a maintenance window
 *   started, extended and ended early;
 * - a silence past the offline threshold (`offline` for web-1 and web-2) and web-1's return (`rejoin`).
 * Then the center is closed (journals flushed) and the log dir returned. What was done is returned beside it, but
 * tests should count the files themselves.
 */
import { join } from 'node:path';
import { COMMAND_VERSION, signReceipt, type ReceiptPayload, type SignedCommand } from '../protocol/command.js';
import { summarize, type Finding, type ScanReport } from '../protocol/scan.js';
import { enrolledNode, heartbeatBody, startTestCenter, tempDir, testNode, type TestCenter, type TestNode } from './helpers.js';
import { generateKeyPair } from '../protocol/keys.js';
import { signRotation } from '../protocol/node-key-rotation.js';

export interface FixtureCommand {
  id: string;
  node: string;
  action: string;
  /** The receipt status the node signed, or `unanswered` (expired by the center). */
  outcome: ReceiptPayload['status'] | 'unanswered';
}

export interface FleetFixture {
  /** The center's log dir (the four journals, ledger files). */
  logDir: string;
  commands: FixtureCommand[];
  /** Node ids by how their enrollment ended. */
  nodes: { approved: string[]; revoked: string[]; rejected: string[] };
  /** Removes the temp dir (log dir and state). */
  cleanup(): void;
}

const HEARTBEAT_MS = 30_000;

/** Waits (bounded) for the center's own timers to do something. */
async function until(done: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 20_000;
  while (!done()) {
    if (Date.now() > end) throw new Error(`fleet fixture: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function finding(check: string, severity: Finding['severity'], title: string): Finding {
  return { check, severity, title, detail: `${title} (fixture)`, evidence: { source: 'fixture' } };
}

function scanReport(nodeId: string, at: Date, findings: Finding[], extra: Partial<ScanReport> = {}): ScanReport {
  return {
    node_id: nodeId,
    started_at: new Date(at.getTime() - 2000).toISOString(),
    finished_at: at.toISOString(),
    agent_version: '0.1.0',
    findings,
    summary: summarize(findings, { checks_run: 8, checks_failed: 0 }),
    trigger: 'schedule',
    ...extra,
  };
}

export async function generateFleetFixture(): Promise<FleetFixture> {
  const tmp = tempDir('vm-fleet-fixture-');
  let offsetMs = 0;
  const now = () => new Date(Date.now() + offsetMs);
  const advance = (ms: number) => void (offsetMs += ms);
  let c: TestCenter | undefined;
  try {
    // Sweeps (attention, outages) every second, so the fixture waits little for the offline declarations.
    c = await startTestCenter(tmp.dir, { fsync: 'off', attentionCheckSecs: 1 }, { now });
    const center = c;
    const ok = async (what: string, p: Promise<{ status: number; json: any }>) => {
      const r = await p;
      if (r.status >= 300) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.json)}`);
      return r.json;
    };
    const send = (node: TestNode, method: 'GET' | 'POST', path: string, body?: unknown) => ok(`${node.id} ${method} ${path}`, node.send(method, path, body, { now }));

    // Enrollment: enrolledNode creates a one-use join token per node.
    const web1 = await enrolledNode(center, 'web-1');
    let web2 = await enrolledNode(center, 'web-2');
    const db1 = await enrolledNode(center, 'db-1');
    await enrolledNode(center, 'edge-1', { approve: false });
    await ok('reject edge-1', center.api('POST', '/api/nodes/edge-1/reject'));
    const unused = await ok('join token', center.api('POST', '/api/join-tokens', { uses: 5, label: 'rack b12' }));
    await ok('revoke join token', center.api('DELETE', `/api/join-tokens/${unused.token_id}`));

    // Heartbeats, 30 s apart; web-2 misses one and its disk fills up.
    for (let round = 0; round < 6; round++) {
      await send(web1, 'POST', '/api/agent/heartbeat', heartbeatBody('web-1', { timestamp: now().toISOString() }));
      if (round !== 3) {
        const diskUsed = round < 4 ? 5e10 : 9.7e10;
        const hb = heartbeatBody('web-2', { timestamp: now().toISOString(), services_ok: round < 5, services: { 'nginx.service': round < 5 ? 'active' : 'failed', 'ssh.service': 'active' } });
        await send(web2, 'POST', '/api/agent/heartbeat', { ...hb, metrics: { ...hb.metrics, disk_used_bytes: diskUsed } });
      }
      await send(db1, 'POST', '/api/agent/heartbeat', heartbeatBody('db-1', { timestamp: now().toISOString() }));
      advance(HEARTBEAT_MS);
    }

    // web-2 rotates its key (POST /api/agent/rotate-key, signed by the old key) and signs with the new one from then on.
    const web2Key = generateKeyPair();
    await send(web2, 'POST', '/api/agent/rotate-key', signRotation('web-2', web2.key, web2Key, now()));
    web2 = testNode(center, 'web-2', web2Key);

    // Scheduled scans.
    await send(web1, 'POST', '/api/agent/scan', scanReport('web-1', now(), [finding('ssh-hardening', 'high', 'SSH allows password login'), finding('updates', 'low', '3 packages can be upgraded'), finding('uptime', 'info', 'up 20 minutes')]));
    await send(web2, 'POST', '/api/agent/scan', scanReport('web-2', now(), [finding('firewall', 'critical', 'no firewall rules loaded'), finding('disk-usage', 'medium', '/ is 97% full')]));
    await send(db1, 'POST', '/api/agent/scan', scanReport('db-1', now(), []));

    // Notes, incidents, tags: the operator/bot side.
    const event = (body: Record<string, unknown>, headers: Record<string, string> = {}) => ok(`event ${String(body.kind)}`, center.api('POST', '/api/events', body, headers));
    await event({ kind: 'note', node_id: 'web-1', body: { text: 'deploy 4711 finished', link: 'https://ci.example.net/4711' } }, { 'X-VM-Author': 'deploybot' });
    await event({ kind: 'note', body: { text: 'maintenance window tonight' } });
    const inc1 = await event({ kind: 'incident', node_id: 'web-2', body: { title: 'disk nearly full', severity: 'high' } });
    await event({ kind: 'ack', body: { incident_id: inc1.id, text: 'cleaning up logs' } });
    await event({ kind: 'resolve', body: { incident_id: inc1.id, text: 'rotated logs' } });
    await event({ kind: 'incident', body: { title: 'upstream DNS flapping', severity: 'medium', description: 'resolver timeouts from all nodes' } });
    await event({ kind: 'tag', node_id: 'web-1', body: { add: ['env=prod', 'tier=edge', 'canary'] } });
    await event({ kind: 'tag', node_id: 'web-1', body: { remove: ['canary'] } });
    // A maintenance window for a node, extended and ended early.
    const window = await ok('start maintenance', center.api('POST', '/api/maintenance', { node_id: 'db-1', reason: 'PostgreSQL minor upgrade', for_secs: 3600, scans: 'defer' }));
    await ok('extend maintenance', center.api('POST', `/api/maintenance/${window.id}/extend`, { for_secs: 7200 }));
    await ok('end maintenance', center.api('POST', `/api/maintenance/${window.id}/end`));

    // An API token for a bot, created then revoked.
    const token = await ok('create API token', center.api('POST', '/api/tokens', { name: 'pagerbot', scopes: ['events:read', 'events:write'], ttl_secs: 86_400 }));
    await ok('revoke API token', center.api('DELETE', `/api/tokens/${token.token_id}`));

    // Commands: issue, let the node poll them (delivered), answer with signed receipts like the agent does.
    const commands: FixtureCommand[] = [];
    const issue = async (node: string, action: string, args: Record<string, unknown> = {}, ttlSecs?: number): Promise<string> => {
      const r = await ok(`issue ${action}`, center.api('POST', '/api/commands', { node_id: node, action, args, ...(ttlSecs !== undefined ? { ttl_secs: ttlSecs } : {}) }));
      return r.id as string;
    };
    const poll = async (node: TestNode): Promise<SignedCommand[]> => (await send(node, 'GET', '/api/agent/commands?wait=0')).commands;
    const answer = async (node: TestNode, id: string, action: string, r: Pick<ReceiptPayload, 'status' | 'exit_code' | 'output'> & { reason?: string }) => {
      const t = now();
      const payload: ReceiptPayload = {
        v: COMMAND_VERSION,
        command_id: id,
        node_id: node.id,
        status: r.status,
        ...(r.reason ? { reason: r.reason } : {}),
        exit_code: r.exit_code,
        started_at: new Date(t.getTime() - 150).toISOString(),
        finished_at: t.toISOString(),
        output: r.output,
        truncated: false,
      };
      await send(node, 'POST', '/api/agent/receipts', signReceipt(payload, node.key));
      commands.push({ id, node: node.id, action, outcome: r.status });
    };

    const ping = await issue('web-1', 'ping');
    const status = await issue('web-2', 'service-status', { unit: 'nginx.service' });
    const restart = await issue('web-2', 'service-restart', { unit: 'nginx.service' });
    const late = await issue('db-1', 'ping');
    const scan = await issue('web-1', 'sovereign-scan');
    const journal = await issue('db-1', 'collect-journal', { unit: 'ssh.service', lines: 20 }, 10);
    const polled = [...(await poll(web1)), ...(await poll(web2))];
    if (polled.length !== 4) throw new Error(`expected 4 deliveries, got ${polled.length}`);
    await answer(web1, ping, 'ping', { status: 'succeeded', exit_code: 0, output: JSON.stringify({ pong: true, node_id: 'web-1' }) });
    await answer(web2, status, 'service-status', { status: 'failed', exit_code: 3, output: 'nginx.service: inactive (dead)\nsince 12:00', reason: 'EXIT_NONZERO' });
    await answer(web2, restart, 'service-restart', { status: 'rejected', exit_code: null, output: 'action service-restart is not allowed on this node', reason: 'ACTION_NOT_ALLOWED' });
    // db-1 polls once with both its commands; its clock says the ping is stale: the agent answers `expired`.
    const dbPolled = await poll(db1);
    if (dbPolled.length !== 2) throw new Error(`expected 2 deliveries to db-1, got ${dbPolled.length}`);
    await answer(db1, late, 'ping', { status: 'expired', exit_code: null, output: 'command expired before it could run', reason: 'EXPIRED' });
    const findings = [finding('ssh-hardening', 'high', 'SSH allows password login')];
    await send(web1, 'POST', '/api/agent/scan', scanReport('web-1', now(), findings, { trigger: 'command', command_id: scan }));
    await answer(web1, scan, 'sovereign-scan', { status: 'succeeded', exit_code: 0, output: JSON.stringify({ findings: 1 }) });

    // collect-journal on db-1 gets no receipt: past its TTL and the receipt grace, the center expires it.
    advance(10_000 + 120_000 + 1000);
    // The center's own 1 s sweep may be the one that journals it; either way, wait until it is applied.
    while (center.services.commands.get(journal)?.status !== 'expired') {
      await center.services.commands.sweep();
      await new Promise((r) => setImmediate(r));
    }
    commands.push({ id: journal, node: 'db-1', action: 'collect-journal', outcome: 'unanswered' });

    // The center key rotated last: every command above is signed by the first key, every later head by the second.
    await ok('rotate the center key', center.api('POST', '/api/keys/rotate', { overlap_secs: 86_400 }));
    await ok('revoke db-1', center.api('POST', '/api/nodes/db-1/revoke'));

    // Past the offline threshold (5 intervals of silence) the center declares the approved nodes offline (web-1 and
    // web-2; db-1 is revoked); web-1 comes back reporting a drained outbox of 3 entries and rejoins.
    advance(5 * HEARTBEAT_MS);
    const outages = center.services.state.outages;
    await until(() => outages.has('web-1') && outages.has('web-2'), 'offline envelopes');
    await send(web1, 'POST', '/api/agent/heartbeat', { ...heartbeatBody('web-1', { timestamp: now().toISOString() }), outbox: { queued: 0, delivered: 3 } });
    await until(() => !outages.has('web-1'), 'the rejoin envelope');
    await center.close();
    c = undefined;
    return {
      logDir: join(tmp.dir, 'logs'),
      commands,
      nodes: { approved: ['web-1', 'web-2'], revoked: ['db-1'], rejected: ['edge-1'] },
      cleanup: tmp.cleanup,
    };
  } catch (err) {
    await c?.close();
    tmp.cleanup();
    throw err;
  }
}
