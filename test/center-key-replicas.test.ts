// Center key rotation on PostgreSQL replicas (docs/OPERATIONS.md, "Rotating the center key"): with the next key
// prepared on one host and copied to the others, a rotation announced on any replica switches every replica to the
// new key; a replica that was not given the key refuses to sign (503 CENTER_KEY_NOT_HELD), says so in its log, and
// does not start again until the key is copied in.
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readKeyFile } from '../lib/key-file.js';
import { CC_BIN, assertBuilt, runNode } from './process-helpers.js';
import { cleanupAfterEach, tempDir } from './helpers.js';
import { requirePostgres, startPostgres, type TestPostgres } from './postgres.js';
import { enrollNode, ReplicaSet } from './replicas.js';

const onCleanup = cleanupAfterEach();

describe.skipIf(!requirePostgres('center key rotation on replicas'))('center key rotation on PostgreSQL replicas', () => {
  let server: TestPostgres;
  beforeAll(async () => {
    assertBuilt();
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  it('prepare, copy, rotate: both replicas sign with the new key; a replica without it refuses with CENTER_KEY_NOT_HELD until it has it', { timeout: 120_000 }, async () => {
    const t = tempDir('vm-keyrep-');
    onCleanup(t.cleanup);
    const set = new ReplicaSet(await server.newDatabase(), t.dir, 2, ['--orchestrator-tick-secs', '0']);
    onCleanup(() => set.stop());
    await set.start();
    await enrollNode(set, 0, 'kr-1');
    const state = (i: number) => join(set.replicas[i]!.dir, 'state');
    const signer = async (i: number) => {
      const r = await set.api(i, 'POST', '/api/commands', { node_id: 'kr-1', action: 'ping' });
      return r.status === 201 ? (r.json.signed.payload.key_id as string) : r;
    };
    const k0 = (await set.api(0, 'GET', '/api/keys')).json.key_id;

    // The two-step rotation: the next key made on replica 0, copied to replica 1, announced on replica 1.
    const prepared = await set.api(0, 'POST', '/api/keys/rotate', { prepare: true });
    expect(prepared.status).toBe(201);
    expect(prepared.json.prepared.file).toBe(join(state(0), 'cc-key.next.pem'));
    copyFileSync(prepared.json.prepared.file, join(state(1), 'cc-key.next.pem'));
    const rotated = await set.api(1, 'POST', '/api/keys/rotate', {});
    expect(rotated.status, JSON.stringify(rotated.json)).toBe(201);
    const k1 = rotated.json.rotation.statement.new_key_id;
    expect(k1).toBe(prepared.json.prepared.key_id);
    await set.converge();
    for (const i of [0, 1]) {
      expect((await set.api(i, 'GET', '/api/keys')).json).toMatchObject({ key_id: k1, status: 'active', previous: [{ key_id: k0 }] });
      expect(await signer(i)).toBe(k1);
      expect(readKeyFile(join(state(i), 'cc-key.pem')).keyId).toBe(k1);
      expect(existsSync(join(state(i), 'cc-key.next.pem'))).toBe(false);
    }

    // Rotated again on replica 0 without copying the key: replica 1 applies the statement and refuses to sign.
    const again = await set.api(0, 'POST', '/api/keys/rotate', {});
    expect(again.status).toBe(201);
    const k2 = again.json.rotation.statement.new_key_id;
    await set.converge();
    expect(await signer(0)).toBe(k2);
    const refused = await signer(1);
    expect(refused).toMatchObject({ status: 503, json: { error: { code: 'CENTER_KEY_NOT_HELD' } } });
    expect((refused as { json: { error: { message: string } } }).json.error.message).toContain(k2);
    expect((await set.api(1, 'GET', '/api/keys')).json).toMatchObject({ key_id: k2, status: 'not-held' });
    expect(set.replicas[1]!.proc!.output()).toMatch(new RegExp(`CENTER_KEY_NOT_HELD: the log announces center key ${k2} \\(rotation #2\\)`));
    // A second rotation from a replica that lacks the key is refused too: it cannot sign the statement.
    expect((await set.api(1, 'POST', '/api/keys/rotate', {})).json.error.code).toBe('CENTER_KEY_NOT_HELD');

    // Restarted without the key it does not start; with the key copied in, it signs with it.
    await set.kill9(1);
    const refusedStart = await runNode(CC_BIN, ['--port', '0', ...set.args(1)], {}, 30_000);
    expect(refusedStart.code).toBe(1);
    expect(refusedStart.stderr).toMatch(new RegExp(`CENTER_KEY_NOT_HELD: the log announces center key ${k2}`));
    copyFileSync(join(state(0), 'cc-key.pem'), join(state(1), 'cc-key.next.pem'));
    await set.spawn(1);
    await set.converge();
    expect(await signer(1)).toBe(k2);
    expect((await set.api(1, 'GET', '/api/keys')).json.status).toBe('active');
  });
});
