/**
 * The agent rotates its node key (`vaultmesh-agent rotate-key`, the `rotate-key` command, `--rotate-key-every`).
 *
 * Crash-safe in three steps, each durable before the next:
 * 1. the next key is written to `<state dir>/node-key.next.pem` (0600, atomic). Its presence is the "pending
 *    rotation" mark: whoever opens the state dir next finishes the rotation before anything else;
 * 2. `POST /api/agent/rotate-key`, signed by the current key, carrying the statement signed by both keys;
 * 3. on success `node-key.next.pem` is renamed over `node-key.pem` (atomic, directory fsynced), and the running
 *    process signs with the new key from then on.
 * A crash before 2 or between 2 and 3 leaves the mark, and the retry is answered 200 for the same new key. If the
 * old key's overlap window ended meanwhile, the center refuses it (NODE_KEY_ROTATED) and the agent asks again
 * signed by the next key, which the center knows as current: that also answers 200, and the agent swaps.
 * Rotations are serialised within a process; across processes the state-dir lock (agent-state.ts) keeps a
 * `rotate-key` run from racing a running daemon — that one is asked through the center (`rotate-key` command).
 */
import { renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair, privateKeyPem, type KeyPair } from '../protocol/keys.js';
import { rotateKeyAnswerSchema, signRotation, type RotateKeyAnswer } from '../protocol/node-key-rotation.js';
import { isVaultMeshError, VaultMeshError } from '../protocol/errors.js';
import { writeFileAtomicSync, fsyncDirSync } from '../lib/atomic-file.js';
import { readKeyFile } from '../lib/key-file.js';
import type { AgentStateStore } from './agent-state.js';

export const KEY_FILE = 'node-key.pem';
export const NEXT_KEY_FILE = 'node-key.next.pem';
export const ROTATE_KEY_PATH = '/api/agent/rotate-key';

export interface KeyRotationDeps {
  stateDir: string;
  nodeId: string;
  store: AgentStateStore;
  /** POSTs `body` to the center signed by `key` (not necessarily the store's current key). */
  post: (key: KeyPair, path: string, body: unknown) => Promise<unknown>;
  now?: () => Date;
  log: (msg: string) => void;
}

export interface KeyRotationResult {
  old_key_id: string;
  new_key_id: string;
  /** False when the center already had this rotation (a retry after a crash). */
  rotated: boolean;
  /** A pending rotation from before (a crash or a failed attempt) was finished rather than a new one started. */
  resumed: boolean;
  old_key_valid_until: string;
}

/**
 * A KeyPair whose fields always read the store's current key: handed to the signing parts (HTTP client, command
 * runner, ledger witness) so that a rotation in the running daemon applies to every request signed after it.
 */
export function liveKey(store: Pick<AgentStateStore, 'key'>): KeyPair {
  return {
    get seed() {
      return store.key.seed;
    },
    get publicKey() {
      return store.key.publicKey;
    },
    get publicKeyHex() {
      return store.key.publicKeyHex;
    },
    get keyId() {
      return store.key.keyId;
    },
  };
}

/** The pending next key, if a rotation was started and not finished. */
export function pendingNextKey(stateDir: string): KeyPair | undefined {
  try {
    return readKeyFile(join(stateDir, NEXT_KEY_FILE));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** When the current key was made (its file's mtime: a rotation renames the next key's file into place). */
export function keyBornAt(stateDir: string): Date {
  return statSync(join(stateDir, KEY_FILE)).mtime;
}

/** Pure: is a scheduled rotation due? `everySecs` 0 = never. */
export function keyRotationDue(keyBornMs: number, everySecs: number, nowMs: number): boolean {
  return everySecs > 0 && nowMs - keyBornMs >= everySecs * 1000;
}

function writeNextKey(stateDir: string): KeyPair {
  const next = generateKeyPair();
  writeFileAtomicSync(join(stateDir, NEXT_KEY_FILE), privateKeyPem(next.seed), 0o600);
  return next;
}

/** Step 3: the next key becomes the key, on disk (one rename) and in the process. */
function swap(deps: KeyRotationDeps, next: KeyPair): void {
  renameSync(join(deps.stateDir, NEXT_KEY_FILE), join(deps.stateDir, KEY_FILE));
  fsyncDirSync(deps.stateDir);
  writeFileAtomicSync(join(deps.stateDir, `${KEY_FILE}.pub`), `${next.publicKeyHex}\n`, 0o644);
  deps.store.setKey(next);
}

async function askCenter(deps: KeyRotationDeps, next: KeyPair): Promise<RotateKeyAnswer> {
  const old = deps.store.key;
  const body = signRotation(deps.nodeId, old, next, (deps.now ?? (() => new Date()))());
  let raw: unknown;
  try {
    raw = await deps.post(old, ROTATE_KEY_PATH, body);
  } catch (err) {
    // The center no longer takes the old key: if it is because of this very rotation (journaled before a crash,
    // overlap over), the next key is the node's key there and its signature is accepted.
    if (!isVaultMeshError(err) || (err.code !== 'NODE_KEY_ROTATED' && err.code !== 'UNKNOWN_NODE')) throw err;
    try {
      raw = await deps.post(next, ROTATE_KEY_PATH, body);
    } catch {
      throw err;
    }
  }
  const r = rotateKeyAnswerSchema.safeParse(raw);
  if (!r.success || r.data.new_key_id !== next.keyId || r.data.old_key_id !== old.keyId) {
    throw new VaultMeshError('BAD_ANSWER', `unexpected key rotation answer from the center; keeping key ${old.keyId} and the pending next key ${next.keyId}`);
  }
  return r.data;
}

export interface KeyRotator {
  /** One rotation (finishing a pending one first if there is one); rotations run one at a time. */
  rotate(): Promise<KeyRotationResult>;
  /** Is a rotation pending (a next key on disk)? */
  pending(): boolean;
  /** Finishes a pending rotation, if any; a failure is logged and left pending for the next turn. */
  finishPending(): Promise<void>;
  /** Rotates when the key is `everySecs` old (0: never); a failure is logged and tried again next turn. */
  rotateIfDue(everySecs: number, nowMs?: number): Promise<void>;
}

const describeError = (err: unknown) => (isVaultMeshError(err) ? `${err.code}: ${err.message}` : String(err));

/** Creates the key rotator of one agent process. */
export function createKeyRotator(deps: KeyRotationDeps): KeyRotator {
  const once = async (): Promise<KeyRotationResult> => {
    const pendingKey = pendingNextKey(deps.stateDir);
    if (!pendingKey && deps.store.read().enrollment !== 'approved') {
      throw new VaultMeshError('INVALID_STATE', `node ${deps.nodeId} is not enrolled and approved yet (this agent has had no accepted heartbeat): nothing to rotate`);
    }
    const next = pendingKey ?? writeNextKey(deps.stateDir);
    const oldKeyId = deps.store.key.keyId;
    if (next.keyId === oldKeyId) {
      // Only a hand-made copy can get here (the swap renames the file away): nothing left to do.
      unlinkSync(join(deps.stateDir, NEXT_KEY_FILE));
      throw new VaultMeshError('BAD_KEY_FILE', `${NEXT_KEY_FILE} holds the current key ${oldKeyId}; removed it`);
    }
    deps.log(`${pendingKey ? 'resuming' : 'starting'} node key rotation ${oldKeyId} → ${next.keyId}`);
    let answer: RotateKeyAnswer;
    try {
      answer = await askCenter(deps, next);
    } catch (err) {
      if (isVaultMeshError(err) && err.code === 'KEY_ROTATION_CONFLICT') {
        // This state dir's key was rotated to another key by another copy of it: this copy cannot carry on.
        deps.log(`node key rotation refused: ${err.message}`);
      }
      throw err;
    }
    swap(deps, next);
    deps.log(`node key rotated: ${oldKeyId} → ${next.keyId}${answer.rotated ? '' : ' (the center already had it)'}; the old key is accepted until ${answer.old_key_valid_until}`);
    return { old_key_id: oldKeyId, new_key_id: next.keyId, rotated: answer.rotated, resumed: pendingKey !== undefined, old_key_valid_until: answer.old_key_valid_until };
  };
  // One rotation at a time. Conditional turns (finish a pending one, rotate when due) decide when their turn comes,
  // not when they are asked: asked while another rotation runs, they would otherwise start a second one after it
  // (its next-key file looks like a pending rotation until the swap), and rotate the fresh key again.
  let tail: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.catch(() => undefined).then(fn);
    tail = run;
    return run;
  };
  const pending = () => pendingNextKey(deps.stateDir) !== undefined;
  const rotator: KeyRotator = {
    rotate: () => exclusive(once),
    pending,
    async finishPending() {
      if (!pending()) return;
      await exclusive(async () => {
        if (pending()) await once();
      }).catch((err: unknown) => deps.log(`pending key rotation not finished yet: ${describeError(err)}`));
    },
    async rotateIfDue(everySecs, nowMs) {
      const due = () => keyRotationDue(keyBornAt(deps.stateDir).getTime(), everySecs, nowMs ?? Date.now());
      if (!due()) return;
      await exclusive(async () => {
        if (due()) await once();
      }).catch((err: unknown) => deps.log(`scheduled key rotation failed: ${describeError(err)}`));
    },
  };
  return rotator;
}
