/**
 * `vaultmesh keys show|rotate`: the command-center's signing key. `show` reads the public key from the state dir
 * (no center needed) and keeps its `{ public_key, key_id }` shape; `--history` adds the retired keys and the
 * rotation statements from the center. `rotate` asks the center to rotate (admin scope, or the admin socket on the
 * center host); `rotate --prepare` only writes the next key (cc-key.next.pem) on that host, for replicas.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VaultMeshError } from '../../protocol/errors.js';
import { keyIdOf } from '../../protocol/keys.js';
import { readKeyFile } from '../../lib/key-file.js';
import { apiOptionsFromFlags, createApiClient } from '../api-client.js';
import { keyPreparedAnswer, keyRotatedAnswer, keysAnswer } from '../answers.js';
import { printOut, renderJson, renderTable } from '../output.js';
import type { CommonFlags } from './operator.js';

const write = (s: string) => printOut(s);
const usage = (msg: string) => new VaultMeshError('USAGE', msg);

export interface KeysFlags extends CommonFlags {
  history?: boolean;
  prepare?: boolean;
  overlapSecs?: string | number;
}

function localPublicKey(dir: string): string {
  try {
    return readKeyFile(join(dir, 'cc-key.pem')).publicKeyHex;
  } catch (err) {
    // An operator without read access to the private key can still read the public half.
    try {
      return readFileSync(join(dir, 'cc-key.pem.pub'), 'utf8').trim();
    } catch {
      throw new VaultMeshError('NO_KEY', `no command-center key in ${dir} (${(err as Error).message}); start vaultmesh-cc once or pass --state-dir`);
    }
  }
}

/** `vaultmesh keys` (declared in cli/command-table.ts). */
export async function keysAction(action: string, f: KeysFlags): Promise<void> {
  if (action === 'show') {
    if (!f.history) {
      const publicKey = localPublicKey(f.stateDir ?? process.env.VAULTMESH_STATE_DIR ?? './state');
      const out = { public_key: publicKey, key_id: keyIdOf(publicKey) };
      write(f.json ? renderJson(out) : `public_key ${out.public_key}\nkey_id     ${out.key_id}\n`);
      return;
    }
    const k = await createApiClient(apiOptionsFromFlags(f)).get('/api/keys', keysAnswer);
    if (f.json) return write(renderJson(k));
    write(
      `public_key ${k.public_key}\nkey_id     ${k.key_id}\nstatus     ${k.status}\n` +
        (k.prepared ? `prepared   ${k.prepared.key_id} (${k.prepared.public_key}), not yet announced\n` : '') +
        (k.rotations.length
          ? `\n${renderTable(
              k.rotations.map((r) => ({ serial: r.statement.serial, old_key_id: r.statement.old_key_id, new_key_id: r.statement.new_key_id, effective_at: r.statement.effective_at, overlap_until: r.statement.overlap_until, seq: r.seq, author: r.author })),
              ['serial', 'old_key_id', 'new_key_id', 'effective_at', 'overlap_until', 'seq', 'author'],
            )}`
          : '\n(no rotations)\n'),
    );
    return;
  }
  if (action === 'rotate') {
    let overlap: number | undefined;
    if (f.overlapSecs !== undefined) {
      overlap = Number(f.overlapSecs);
      if (!Number.isInteger(overlap) || overlap < 1 || overlap > 366 * 86_400) throw usage('--overlap-secs must be a whole number of seconds from 1 to 31622400');
    }
    const api = createApiClient(apiOptionsFromFlags(f));
    if (f.prepare) {
      if (overlap !== undefined) throw usage('--overlap-secs goes with keys rotate, not with --prepare');
      const { prepared: p } = await api.post('/api/keys/rotate', keyPreparedAnswer, { prepare: true });
      write(
        f.json
          ? renderJson(p)
          : `${p.created ? 'prepared' : 'already prepared'}: next center key ${p.key_id} (${p.public_key}) in ${p.file}\n` +
              `Copy that file (0600) into every replica's state dir, then run vaultmesh keys rotate.\n`,
      );
      return;
    }
    // The key this rotation replaces, named in the request: a retried POST after a rotation went through is refused
    // (409 CENTER_KEY_CHANGED) instead of rotating a second time.
    const current = await api.get('/api/keys', keysAnswer);
    const r = await api.post('/api/keys/rotate', keyRotatedAnswer, { ...(overlap !== undefined ? { overlap_secs: overlap } : {}), from_key_id: current.key_id });
    const s = r.rotation.statement;
    write(
      f.json
        ? renderJson(r)
        : `rotated: center key ${s.old_key_id} → ${s.new_key_id} (rotation #${s.serial}, journaled at seq ${r.rotation.seq}).\n` +
            `Commands and ledger heads are signed by ${s.new_key_id} from now on; agents accept commands signed by ${s.old_key_id} until ${s.overlap_until}.\n` +
            `New public key (to pin with VAULTMESH_CC_PUBKEY): ${r.keys.public_key}\n`,
    );
    return;
  }
  throw usage(`unknown action keys ${action}: use show or rotate`);
}
