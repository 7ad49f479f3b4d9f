// m-of-n approval on a real center: proposal (202, nothing signed), approvals by distinct operators with their own
// tokens, the refusals, a restart in the middle (replay keeps 1 of 2), the issue in the approval's own envelope,
// the agent getting a command it can verify, deny and expiry, and two approvals at once issuing exactly once.
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { cleanupAfterEach, startTestCenter, tempDir, testNode, type TestCenter, type TestNode } from '../../test/helpers.js';
import { verifyCommand, type SignedCommand } from '../../protocol/command.js';
import { CLI_BIN, assertBuilt, runNode } from '../../test/process-helpers.js';

const onCleanup = cleanupAfterEach();

const POLICY = {
  v: 1,
  proposal_ttl_secs: 600,
  profiles: {
    prod: {
      actions: ['ping', 'service-restart', 'service-status'],
      units: ['nginx.service'],
      restart_units: ['nginx.service'],
      approvals: { 'service-restart': 2, 'service-status': 1 },
    },
  },
};

export async function prodNode(c: TestCenter, id: string): Promise<TestNode> {
  const tok = await c.api('POST', '/api/join-tokens', { uses: 1 });
  const node = testNode(c, id);
  const r = await node.send('POST', '/api/agent/enroll', { token: tok.json.token, node_id: id, hostname: `${id}.example`, os_profile: 'prod', public_key: node.key.publicKeyHex, agent_version: '0.1.0', facts: {} });
  expect(r.status).toBeLessThan(300);
  expect((await c.api('POST', `/api/nodes/${id}/approve`)).status).toBe(200);
  return node;
}

type Api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; json: any }>;
function apiAs(c: { url: string }, token: string): Api {
  return async (method, path, body, headers = {}) => {
    const res = await request(c.url + path, {
      method: method as 'GET',
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.body.text();
    return { status: res.statusCode, json: text ? JSON.parse(text) : undefined };
  };
}

/** Operators with their own API tokens (identities `token:<name>`); the tokens outlive a restart of the center. */
async function operatorTokens(c: TestCenter, names: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const t = await c.api('POST', '/api/tokens', { name, scopes: ['commands:write', 'nodes:read'] });
    expect(t.status).toBe(201);
    out[name] = t.json.token;
  }
  return out;
}
const apisOf = (c: { url: string }, tokens: Record<string, string>): Record<string, Api> => Object.fromEntries(Object.entries(tokens).map(([n, t]) => [n, apiAs(c, t)]));
const operators = async (c: TestCenter, names: string[]) => apisOf(c, await operatorTokens(c, names));

const commandLines = (dir: string) =>
  readFileSync(join(dir, 'logs', 'commands.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.kind === 'command');

describe('m-of-n approval of commands', () => {
  let clockOffsetMs = 0;
  const now = () => new Date(Date.now() + clockOffsetMs);

  async function center(dir: string): Promise<TestCenter> {
    const c = await startTestCenter(dir, { policy: join(dir, 'policy.json'), orchestratorTickSecs: 0 }, { now });
    onCleanup(() => c.close());
    return c;
  }
  function setup() {
    const t = tempDir();
    onCleanup(t.cleanup);
    writeFileSync(join(t.dir, 'policy.json'), JSON.stringify(POLICY));
    clockOffsetMs = 0;
    return t.dir;
  }

  it('proposes, refuses self and double approval, survives a restart at 1 of 2, issues on the 2nd with the approvals in the issued line', async () => {
    const dir = setup();
    let c = await center(dir);
    const node = await prodNode(c, 'db-01');
    const tokens = await operatorTokens(c, ['alice', 'bob', 'carol']);
    let ops = apisOf(c, tokens);

    const proposed = await ops.alice!('POST', '/api/commands', { node_id: 'db-01', action: 'service-restart', args: { unit: 'nginx.service' } }, { 'idempotency-key': 'restart-1' });
    expect(proposed.status).toBe(202);
    expect(proposed.json).toMatchObject({ status: 'proposed', signed: null, issued_by: 'token:alice', proposal: { proposed_by: 'token:alice', approvals_required: 2, approvals: [], denied: null } });
    const id = proposed.json.id as string;
    const retry = await ops.alice!('POST', '/api/commands', { node_id: 'db-01', action: 'service-restart', args: { unit: 'nginx.service' } }, { 'idempotency-key': 'restart-1' });
    expect(retry).toMatchObject({ status: 200, json: { id, duplicate: true, status: 'proposed' } });
    // Nothing is signed, so nothing reaches the node.
    expect((await node.send('GET', '/api/agent/commands?wait=0')).json.commands).toEqual([]);
    expect((await ops.alice!('GET', `/api/commands?status=proposed`)).json.map((x: { id: string }) => x.id)).toEqual([id]);

    const self = await ops.alice!('POST', `/api/commands/${id}/approve`);
    expect(self).toMatchObject({ status: 403, json: { error: { code: 'SELF_APPROVAL' } } });
    const first = await ops.bob!('POST', `/api/commands/${id}/approve`);
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ status: 'proposed', proposal: { approvals: [{ by: 'token:bob', seq: expect.any(Number) }] } });
    expect(await ops.bob!('POST', `/api/commands/${id}/approve`)).toMatchObject({ status: 409, json: { error: { code: 'ALREADY_APPROVED' } } });
    // The author is the authenticated identity: a body naming someone else is refused, not believed.
    expect((await ops.bob!('POST', `/api/commands/${id}/approve`, { by: 'token:carol' })).status).toBe(400);
    expect((await ops.bob!('POST', '/api/commands/not%20an%20id/approve')).status).toBe(400);
    expect((await ops.bob!('POST', '/api/commands/cmd-nope/approve')).status).toBe(404);

    // Restart: replay keeps the proposal at 1 of 2.
    await c.close();
    c = await center(dir);
    const after = await c.api('GET', `/api/commands/${id}`);
    expect(after.json).toMatchObject({ status: 'proposed', proposal: { approvals: [{ by: 'token:bob' }] } });
    ops = apisOf(c, tokens);
    expect(await ops.bob!('POST', `/api/commands/${id}/approve`)).toMatchObject({ status: 409, json: { error: { code: 'ALREADY_APPROVED' } } });

    const second = await ops.carol!('POST', `/api/commands/${id}/approve`, { reason: 'change ticket 42' });
    expect(second.json.proposal.approvals[1]).toMatchObject({ by: 'token:carol', reason: 'change ticket 42' });
    expect(second.status).toBe(200);
    expect(second.json.status).toBe('queued');
    expect(second.json.signed.payload).toMatchObject({ id, node_id: 'db-01', action: 'service-restart', args: { unit: 'nginx.service' } });
    const approvals = second.json.proposal.approvals as Array<{ by: string; seq: number }>;
    expect(approvals.map((a) => a.by)).toEqual(['token:bob', 'token:carol']);
    expect(await ops.bob!('POST', `/api/commands/${id}/deny`)).toMatchObject({ status: 409, json: { error: { code: 'PROPOSAL_CLOSED' } } });

    // The issued line in commands.jsonl (the commands ledger's leaf) names the proposer and both approvals.
    const issued = commandLines(dir).filter((e) => e.body.command_id === id && e.body.event === 'issued');
    expect(issued).toHaveLength(1);
    expect(approvals[1]!.seq).toBe(issued[0].seq); // the approval that met the threshold is the issued line itself
    expect(issued[0]).toMatchObject({ author: 'token:carol', body: { proposed_by: 'token:alice', approvals: [{ by: 'token:bob', seq: approvals[0]!.seq }, { by: 'token:carol' }] } });
    const proof = await c.api('GET', `/api/ledger/proof/cmd-issued-${id}?log=commands`);
    expect(proof.status).toBe(200);
    expect(proof.json.leaf_line).toContain('"approvals":[{"at":');

    const polled = await testNode(c, 'db-01', node.key).send('GET', '/api/agent/commands?wait=0'); // the restarted center has a new port
    const cmd = polled.json.commands[0] as SignedCommand;
    const keys = { [c.services.centerKey.keyId]: c.services.centerKey.publicKeyHex };
    expect(verifyCommand(cmd, { nodeId: 'db-01', pinnedKeys: keys, nowMs: Date.now(), maxSkewMs: 60_000, nonceSeen: () => false, allowedActions: ['service-restart'] }).ok).toBe(true);

    // A restart replays the issued proposal to the same state.
    const before = (await c.api('GET', `/api/commands/${id}`)).json;
    await c.close();
    c = await center(dir);
    expect((await c.api('GET', `/api/commands/${id}`)).json).toEqual(before);
  });

  it('one deny ends a proposal; a revoked node is not signed for; a lapsed proposal refuses approval and the sweep journals it proposal_expired', async () => {
    const dir = setup();
    const c = await center(dir);
    await prodNode(c, 'db-02');
    const ops = await operators(c, ['alice', 'bob', 'carol']);
    const send = () => ops.alice!('POST', '/api/commands', { node_id: 'db-02', action: 'service-restart', args: { unit: 'nginx.service' } });

    const a = (await send()).json.id as string;
    await ops.bob!('POST', `/api/commands/${a}/approve`);
    const denied = await ops.carol!('POST', `/api/commands/${a}/deny`, { reason: 'not during the sale' });
    expect(denied.json).toMatchObject({ status: 'denied', signed: null, proposal: { denied: { by: 'token:carol', reason: 'not during the sale' } } });
    expect(await ops.bob!('POST', `/api/commands/${a}/approve`)).toMatchObject({ status: 409, json: { error: { code: 'PROPOSAL_CLOSED' } } });
    expect((await ops.bob!('POST', `/api/commands/${a}/deny`, { reason: 'x'.repeat(513) })).status).toBe(400);

    // The approval that would sign checks the node again: revoked since the proposal, it is refused and nothing is signed.
    const r = (await send()).json.id as string;
    await ops.bob!('POST', `/api/commands/${r}/approve`);
    expect((await c.api('POST', '/api/nodes/db-02/revoke')).status).toBe(200);
    expect(await ops.carol!('POST', `/api/commands/${r}/approve`)).toMatchObject({ status: 409, json: { error: { code: 'NODE_NOT_APPROVED' } } });
    expect((await c.api('GET', `/api/commands/${r}`)).json).toMatchObject({ status: 'proposed', signed: null, proposal: { approvals: [{ by: 'token:bob' }] } });
    expect((await ops.carol!('POST', `/api/commands/${r}/deny`)).json.status).toBe('denied');

    const b = (await ops.alice!('POST', '/api/commands', { node_id: 'db-02', action: 'service-restart', args: { unit: 'nginx.service' } })).json;
    expect(b.error?.code).toBe('NODE_NOT_APPROVED'); // a revoked node gets no new proposals either
    await prodNode(c, 'db-06');
    const bId = (await ops.alice!('POST', '/api/commands', { node_id: 'db-06', action: 'service-restart', args: { unit: 'nginx.service' } })).json.id as string;
    clockOffsetMs = 601_000;
    expect(await ops.bob!('POST', `/api/commands/${bId}/approve`)).toMatchObject({ status: 409, json: { error: { code: 'PROPOSAL_EXPIRED' } } });
    expect(await c.services.commands.sweep()).toBe(1);
    expect((await c.api('GET', `/api/commands/${bId}`)).json.status).toBe('proposal_expired');
    expect(await c.services.commands.sweep()).toBe(0);
    expect(commandLines(dir).filter((e) => e.body.command_id === bId).map((e) => e.body.event)).toEqual(['proposed', 'proposal_expired']);
    // Never signed: no issued line for either.
    expect(commandLines(dir).filter((e) => e.body.event === 'issued')).toHaveLength(0);
  });

  it('two approvals at once reach the threshold exactly once', async () => {
    const dir = setup();
    const c = await center(dir);
    const node = await prodNode(c, 'db-03');
    const ops = await operators(c, ['alice', 'bob', 'carol', 'dave']);
    for (let round = 0; round < 5; round++) {
      // 1 of n: the two approvals race for the one slot; exactly one issues, the other is told it is closed.
      const one = (await ops.alice!('POST', '/api/commands', { node_id: 'db-03', action: 'service-status', args: { unit: 'nginx.service' } })).json.id as string;
      const [x, y] = await Promise.all([ops.bob!('POST', `/api/commands/${one}/approve`), ops.carol!('POST', `/api/commands/${one}/approve`)]);
      expect([x.status, y.status].sort()).toEqual([200, 409]);
      expect([x, y].find((r) => r.status === 409)!.json.error.code).toBe('PROPOSAL_CLOSED');
      // 2 of n with three approvers at once: two succeed (one of them issues), the third is closed.
      const two = (await ops.alice!('POST', '/api/commands', { node_id: 'db-03', action: 'service-restart', args: { unit: 'nginx.service' } })).json.id as string;
      const all = await Promise.all(['bob', 'carol', 'dave'].map((n) => ops[n]!('POST', `/api/commands/${two}/approve`)));
      expect(all.map((r) => r.status).sort()).toEqual([200, 200, 409]);
      for (const cid of [one, two]) expect(commandLines(dir).filter((e) => e.body.command_id === cid && e.body.event === 'issued')).toHaveLength(1);
    }
    expect((await node.send('GET', '/api/agent/commands?wait=0')).json.commands).toHaveLength(10);
  });

  it('vaultmesh cmd send/list/approve/deny/show, and ledger prove + check on the issued line name the approvals', async () => {
    assertBuilt();
    const dir = setup();
    const c = await center(dir);
    await prodNode(c, 'db-04');
    const tokens = await operatorTokens(c, ['alice', 'bob', 'carol']);
    const cli = (who: string, ...args: string[]) => runNode(CLI_BIN, [...args, '--cc-url', c.url], { VAULTMESH_TOKEN: tokens[who]!, VAULTMESH_ADMIN_SOCKET: '' });

    const sent = await cli('alice', 'cmd', 'send', 'db-04', 'service-restart', '--arg', 'unit=nginx.service');
    expect(sent.code, sent.stderr).toBe(0);
    const id = /^(cmd-[0-9a-f]{16})  proposed: needs 2 approvals by other operators/.exec(sent.stdout)?.[1];
    expect(id, sent.stdout).toBeDefined();
    const listed = await cli('bob', 'cmd', 'list', '--status', 'proposed');
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+db-04\\s+service-restart\\s+proposed\\s+0/2`));

    const self = await cli('alice', 'cmd', 'approve', id!);
    expect(self.code).not.toBe(0);
    expect(self.stderr).toMatch(/SELF_APPROVAL/);
    const bob = await cli('bob', 'cmd', 'approve', id!);
    expect(bob.code, bob.stderr).toBe(0);
    expect(bob.stdout).toBe(`${id}  proposed  approvals 1/2 (token:bob)  expires ${(await c.api('GET', `/api/commands/${id}`)).json.proposal.expires_at}\n`);
    const carol = await cli('carol', 'cmd', 'approve', id!);
    expect(carol.stdout).toBe(`${id}  queued  approvals 2/2 (token:bob, token:carol)\n`);
    const show = await cli('alice', 'cmd', 'show', id!);
    expect(show.stdout).toMatch(/approved by +token:bob at \S+ \(seq \d+\)/);
    expect(show.stdout).toMatch(/approved by +token:carol at \S+ \(seq \d+\)/);

    const other = (await cli('alice', 'cmd', 'send', 'db-04', 'service-restart', '--arg', 'unit=nginx.service', '--json'));
    const otherId = JSON.parse(other.stdout).id as string;
    const denied = await cli('bob', 'cmd', 'deny', otherId, '--reason', 'freeze week');
    expect(denied.stdout).toBe(`${otherId}  denied  approvals 0/2  denied by token:bob: freeze week\n`);
    expect((await cli('carol', 'cmd', 'approve', otherId)).stderr).toMatch(/PROPOSAL_CLOSED/);
    expect((await cli('carol', 'cmd', 'approve')).stderr).toMatch(/needs one command id/);

    await c.close(); // a signed head covers every line
    const logDir = join(dir, 'logs');
    const prove = await runNode(CLI_BIN, ['ledger', 'prove', `cmd-issued-${id}`, '--log', 'commands', '--dir', logDir, '--out', join(dir, 'proof.json')], { VAULTMESH_LOG_DIR: '' });
    expect(prove.code, prove.stderr).toBe(0);
    const bundle = JSON.parse(readFileSync(join(dir, 'proof.json'), 'utf8'));
    expect(JSON.parse(bundle.leaf_line).body).toMatchObject({ event: 'issued', proposed_by: 'token:alice', approvals: [{ by: 'token:bob' }, { by: 'token:carol' }] });
    const check = await runNode(CLI_BIN, ['ledger', 'check', join(dir, 'proof.json')], { VAULTMESH_LOG_DIR: '' });
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toMatch(new RegExp(`^ok: command cmd-issued-${id} from db-04 is leaf \\d+ .*\\n  proposed by token:alice; approved by token:bob at \\S+ \\(seq \\d+\\), token:carol at \\S+ \\(seq \\d+, this entry\\)\\n$`));
  });

  it('a state snapshot holds proposals: snapshot + tail equals a full replay, and 1 of 2 still needs exactly 1 more', async () => {
    const dir = setup();
    let c = await center(dir);
    await prodNode(c, 'db-05');
    const tokens = await operatorTokens(c, ['alice', 'bob', 'carol']);
    let ops = apisOf(c, tokens);
    const propose = async () => (await ops.alice!('POST', '/api/commands', { node_id: 'db-05', action: 'service-restart', args: { unit: 'nginx.service' } })).json.id as string;
    const [open0, open1, issued, denied] = [await propose(), await propose(), await propose(), await propose()];
    await ops.bob!('POST', `/api/commands/${open1}/approve`);
    await ops.bob!('POST', `/api/commands/${issued}/approve`);
    expect((await ops.carol!('POST', `/api/commands/${issued}/approve`)).json.status).toBe('queued');
    await ops.carol!('POST', `/api/commands/${denied}/deny`);
    expect((await c.snapshotter!.snapshot())?.seq).toBe(c.services.state.lastSeq);
    const tail = await propose(); // after the snapshot: replayed from the log
    await ops.bob!('POST', `/api/commands/${tail}/approve`);
    await c.close();

    c = await center(dir);
    expect(c.snapshot).toMatchObject({ used: true });
    const fromSnapshot = structuredClone(c.services.state.commands);
    expect([...fromSnapshot.proposals]).toEqual([open0, open1, tail]);
    await c.close();
    const full = await startTestCenter(dir, { policy: join(dir, 'policy.json'), orchestratorTickSecs: 0, snapshotOff: true }, { now });
    onCleanup(() => full.close());
    expect(fromSnapshot).toEqual(full.services.state.commands);
    await full.close();

    c = await center(dir);
    ops = apisOf(c, tokens);
    expect(await ops.bob!('POST', `/api/commands/${open1}/approve`)).toMatchObject({ status: 409, json: { error: { code: 'ALREADY_APPROVED' } } });
    expect((await ops.carol!('POST', `/api/commands/${open1}/approve`)).json.status).toBe('queued');
    expect((await ops.bob!('POST', `/api/commands/${open0}/approve`)).json.status).toBe('proposed');
  });
});
