/**
 * The agent's small persistent state in its state dir (0700): its key (`node-key.pem`, 0600) and what it learned
 * from the center (`agent-state.json`: center keys trusted on first use, accepted center key rotations, enrollment status).
 */
import { mkdirSync, readFileSync, chmodSync } from 'node:fs';
import { VaultMeshError } from '../protocol/errors.js';
import { join } from 'node:path';
import { z } from 'zod';
import type { KeyPair } from '../protocol/keys.js';
import { writeFileAtomicSync } from '../lib/atomic-file.js';
import { loadOrCreateKeyFile } from '../lib/key-file.js';
import { isHeld, tryLockDir } from '../lib/dir-lock.js';
import { hexKeySchema } from '../protocol/agent-api.js';
import { signedRotationSchema } from '../protocol/center-key-rotation.js';

const persistedSchema = z.object({
  enrollment: z.enum(['none', 'pending', 'approved']).default('none'),
  tofu_center_keys: z.array(z.object({ public_key: hexKeySchema, key_id: z.string() })).default([]),
  /** Center key rotation statements this agent accepted, in order (center-key-rotation.ts). */
  center_key_rotations: z.array(signedRotationSchema).default([]),
});
export type PersistedAgentState = z.infer<typeof persistedSchema>;

export interface AgentStateStore {
  /** The node key now: replaced in place when the agent rotates it (key-rotation.ts), so read it at each use. */
  readonly key: KeyPair;
  keyCreated: boolean;
  /** Installs a rotated key (its file is already in place). */
  setKey(key: KeyPair): void;
  read(): PersistedAgentState;
  write(s: PersistedAgentState): void;
}

export function openAgentState(stateDir: string): AgentStateStore {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  chmodSync(stateDir, 0o700);
  const loaded = loadOrCreateKeyFile(join(stateDir, 'node-key.pem'));
  let key = loaded.key;
  const file = join(stateDir, 'agent-state.json');
  return {
    get key() {
      return key;
    },
    keyCreated: loaded.created,
    setKey(k) {
      key = k;
    },
    read() {
      try {
        return persistedSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return persistedSchema.parse({});
        throw err;
      }
    },
    write(s) {
      writeFileAtomicSync(file, `${JSON.stringify(s, null, 2)}\n`, 0o600);
    },
  };
}

/**
 * One agent per state dir: the nonce store and the outbox live in memory per process, so a second process (say
 * `--once` beside the daemon) could run a redelivered command twice or compact away the other's nonces. The lock is
 * flock(2) on `agent.lock` (lib/dir-lock.ts): the kernel releases it with the process, so a crashed or killed agent
 * leaves nothing to take over, and a pid that a new process reused after a reboot blocks nothing.
 */
export function lockStateDir(stateDir: string, pid = process.pid): () => void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const lock = tryLockDir(stateDir, { name: 'agent.lock', pid });
  if (isHeld(lock)) {
    const who = lock.heldBy === undefined ? 'another vaultmesh-agent' : `another vaultmesh-agent (pid ${lock.heldBy})`;
    throw new VaultMeshError('AGENT_LOCKED', `${who} is using ${stateDir}; stop it first (or use another --state-dir)`);
  }
  return () => lock.release();
}
