import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createCommandPayload, signCommand, verifyReceipt, type SignedCommand, type SignedReceipt } from '../protocol/command.js';
import { generateKeyPair } from '../protocol/keys.js';
import { tempDir } from '../test/helpers.js';
import { createActionRegistry } from './actions.js';
import { createCommandRunner } from './command-runner.js';
import { openNonceStore } from './nonce-store.js';

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

const center = generateKeyPair();
const nodeKey = generateKeyPair();
let n = 0;
const cmd = (action = 'ping', args = {}, over: Partial<Parameters<typeof createCommandPayload>[0]> = {}): SignedCommand =>
  signCommand(createCommandPayload({ id: `cmd-${++n}`, nodeId: 'web-01', action, args, nonce: n.toString(16).padStart(32, '0'), now: new Date(), keyId: center.keyId, ...over }), center);

function setup(dir?: string) {
  let d = dir;
  if (!d) {
    const t = tempDir();
    cleanups.push(t.cleanup);
    d = t.dir;
  }
  const posted: SignedReceipt[] = [];
  let runs = 0;
  const nonces = openNonceStore({ file: join(d, 'nonces.jsonl') });
  cleanups.push(() => nonces.close());
  const actions = createActionRegistry({ nodeId: 'web-01', agentVersion: 't', restartableUnits: new Set() });
  const counted = { ...actions, ping: async (a: never, c: never) => (runs++, actions.ping(a, c)) };
  const runner = createCommandRunner({
    nodeId: 'web-01',
    key: nodeKey,
    client: { get: async () => ({ commands: [] }) as never, post: async (_p, body) => (posted.push(body as SignedReceipt), {}) as never },
    nonces,
    pinnedKeys: () => ({ [center.keyId]: center.publicKeyHex }),
    allowedActions: new Set(['ping', 'service-restart', 'service-status', 'collect-journal']),
    restartableUnits: new Set(),
    readableUnits: new Set(['vaultmesh-agent.service']),
    actions: counted,
    maxSkewMs: 60_000,
    timeoutsMs: { default: 5000 },
  });
  return { runner, posted, runs: () => runs, dir: d, nonces };
}

describe('command runner', () => {
  it('runs a valid command once and answers a redelivery with the stored receipt', async () => {
    const s = setup();
    const c = cmd();
    const first = await s.runner.handle(c);
    expect(first).toMatchObject({ outcome: 'ran', posted: true, receipt: { payload: { status: 'succeeded', exit_code: 0, node_id: 'web-01', command_id: c.payload.id } } });
    expect(verifyReceipt(s.posted[0]!, nodeKey.publicKeyHex)).toBe(true);
    const again = await s.runner.handle(c);
    expect(again.outcome).toBe('resent');
    expect(s.runs()).toBe(1);
    expect(s.posted[1]).toEqual(s.posted[0]);
  });

  it('reports every refusal as a signed receipt with its reason; a replayed nonce in a new command is refused', async () => {
    const s = setup();
    const ok = cmd();
    await s.runner.handle(ok);
    const replay = signCommand({ ...ok.payload, id: 'cmd-replay' }, center);
    const out = await s.runner.handle(replay);
    expect(out).toMatchObject({ outcome: 'rejected', receipt: { payload: { status: 'rejected', reason: 'NONCE_REUSED', exit_code: null } } });
    expect((await s.runner.handle(cmd('service-restart', { unit: 'nginx.service' }))).receipt?.payload.reason).toBe('ACTION_NOT_ALLOWED');
    // Reading a unit's status or journal is refused outside the node's own readable-units list.
    for (const action of ['service-status', 'collect-journal']) {
      const r = (await s.runner.handle(cmd(action, { unit: 'postgresql.service' }))).receipt?.payload;
      expect(r, action).toMatchObject({ status: 'rejected', reason: 'ACTION_NOT_ALLOWED' });
      expect(r?.output, action).toMatch(/VAULTMESH_READABLE_UNITS/);
    }
    expect((await s.runner.handle(cmd('ping', {}, { ttlMs: 10, now: new Date(Date.now() - 1000) }))).receipt?.payload).toMatchObject({ status: 'expired', reason: 'EXPIRED' });
    const forged = { ...cmd(), signature: '00'.repeat(64) };
    expect((await s.runner.handle(forged)).receipt?.payload.reason).toBe('BAD_SIGNATURE');
    // a forged copy does not poison the real command's id
    const real = signCommand(forged.payload, center);
    expect((await s.runner.handle(real)).outcome).toBe('ran');
    expect(s.runs()).toBe(2);
  });

  it('after a crash mid-run, the same command is answered INTERRUPTED and not run again', async () => {
    const s = setup();
    const c = cmd();
    s.nonces.record(c.payload.nonce, c.payload.id, Date.parse(c.payload.expires_at)); // accepted, then the agent died
    const r = await s.runner.handle(c);
    expect(r).toMatchObject({ outcome: 'rejected', receipt: { payload: { status: 'failed', reason: 'INTERRUPTED' } } });
    expect(s.runs()).toBe(0);
  });
});
