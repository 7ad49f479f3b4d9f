/**
 * The agent as a witness of the center's ledgers (docs/LEDGER.md, "Agents as witnesses"). Each heartbeat answer
 * offers, per ledger, the latest checkpoint and a consistency proof from the checkpoint this agent last accepted.
 * The agent checks the center's signature (with the pinned or trusted-on-first-use center key) and the proof; only
 * then does it store the checkpoint (`ledger-witness.json`, 0600, in its state dir) and cosign it
 * (`cosignature/v1` with the node key), sending the cosignature with its next heartbeat. A smaller tree, another root
 * for the same size, or a failing proof is a fork: it keeps its old checkpoint, cosigns nothing, logs loudly and
 * reports the fork in every heartbeat (the center opens a `ledger_fork` incident) until the center shows a tree
 * that extends the accepted one again.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { LedgerOffer, WitnessReport } from '../protocol/agent-api.js';
import { openCheckpoint } from '../protocol/checkpoint.js';
import { signCosignature } from '../protocol/cosignature.js';
import { nodeWitnessName, type CheckpointLog } from '../protocol/ledger-checkpoints.js';
import type { KeyPair } from '../protocol/keys.js';
import { ed25519NoteVerifier, parseNote } from '../protocol/signed-note.js';
import { checkExtends } from '../protocol/witness-check.js';
import { writeFileAtomicSync } from '../lib/atomic-file.js';

const LOGS: readonly CheckpointLog[] = ['scans', 'commands'];
const hash64 = z.string().regex(/^[A-Za-z0-9+/]{43}=$/);

const acceptedSchema = z.object({
  origin: z.string().min(1),
  tree_size: z.number().int().nonnegative(),
  root_hash: hash64,
  /** The checkpoint as the center signed it (its own signature line only). */
  checkpoint: z.string(),
  cosignature: z.string(),
});
const forkSchema = z.object({ reason: z.enum(['smaller', 'different-root', 'bad-proof']), message: z.string(), seen_size: z.number().int().nonnegative() });
const logStateSchema = z.object({ accepted: acceptedSchema.optional(), fork: forkSchema.optional() });
const stateSchema = z.object({ scans: logStateSchema.default({}), commands: logStateSchema.default({}) });
type WitnessState = z.infer<typeof stateSchema>;

export const LEDGER_WITNESS_FILE = 'ledger-witness.json';

export interface LedgerWitness {
  /** What the next heartbeat reports (`witness`), or undefined before anything was accepted or seen. */
  report(): Partial<Record<CheckpointLog, WitnessReport>> | undefined;
  /** Checks the offers of a heartbeat answer against what was accepted; stores and cosigns what extends it. */
  observe(offers: Partial<Record<CheckpointLog, LedgerOffer>> | undefined, centerKeys: readonly string[]): void;
  state(): WitnessState;
}

export interface LedgerWitnessOptions {
  stateDir: string;
  nodeId: string;
  key: KeyPair;
  log: (msg: string) => void;
  now?: () => Date;
}

export function createLedgerWitness(opts: LedgerWitnessOptions): LedgerWitness {
  const file = join(opts.stateDir, LEDGER_WITNESS_FILE);
  const now = opts.now ?? (() => new Date());
  const name = nodeWitnessName(opts.nodeId);
  // A damaged file must not silently reset what was witnessed (starting over would accept any history), nor stop
  // the agent's heartbeats: witnessing stops, loudly, until the file is restored or knowingly deleted.
  let disabled = false;
  let state: WitnessState = stateSchema.parse({});
  try {
    state = stateSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      disabled = true;
      opts.log(`ERROR: ${file} is unreadable (${(err as Error).message}): not witnessing the ledgers until it is restored, or knowingly deleted to witness from scratch`);
    }
  }
  const save = (): void => {
    try {
      writeFileAtomicSync(file, `${JSON.stringify(state, null, 2)}\n`, 0o600);
    } catch (err) {
      // The new checkpoint stays in memory (and is cosigned); the file catches up on the next change.
      opts.log(`ERROR: ${file}: ${(err as Error).message}`);
    }
  };

  return {
    state: () => state,
    report() {
      if (disabled) return undefined;
      const out: Partial<Record<CheckpointLog, WitnessReport>> = {};
      for (const log of LOGS) {
        const s = state[log];
        if (!s.accepted && !s.fork) continue;
        out[log] = {
          tree_size: s.accepted?.tree_size ?? 0,
          ...(s.accepted ? { cosignature: s.accepted.cosignature } : {}),
          ...(s.fork ? { fork: s.fork } : {}),
        };
      }
      return Object.keys(out).length ? out : undefined;
    },

    observe(offers, centerKeys) {
      if (disabled || !offers || centerKeys.length === 0) return;
      let changed = false;
      for (const log of LOGS) {
        const offer = offers[log];
        if (!offer) continue;
        const s = state[log];
        let opened;
        try {
          const origin = parseNote(offer.checkpoint).text.split('\n')[0]!;
          if (s.accepted && origin !== s.accepted.origin) throw new Error(`origin ${origin} is not ${s.accepted.origin}`);
          opened = openCheckpoint(offer.checkpoint, centerKeys.map((k) => ed25519NoteVerifier({ name: origin, publicKey: Buffer.from(k, 'hex') })), origin);
        } catch (err) {
          opts.log(`WARNING: ledger ${log}: the center's checkpoint is not signed by its key (${(err as Error).message}); not cosigned`);
          continue;
        }
        const cp = opened.checkpoint;
        if (offer.from_size !== (s.accepted?.tree_size ?? 0)) continue; // an answer to an older report (outbox): wait for the next
        const last = s.accepted ? { treeSize: s.accepted.tree_size, rootHash: Buffer.from(s.accepted.root_hash, 'base64') } : undefined;
        const verdict = checkExtends(last, cp, offer.proof.map((h) => Buffer.from(h, 'hex')));
        if (!verdict.ok) {
          opts.log(
            `LEDGER FORK (${log}): ${verdict.message}. The center shows size ${cp.treeSize}; this node accepted size ${last?.treeSize ?? 0} and keeps it. Nothing is cosigned past it; reported to the center as a ledger_fork incident.`,
          );
          const fork = { reason: verdict.reason, message: verdict.message, seen_size: cp.treeSize };
          if (JSON.stringify(s.fork) !== JSON.stringify(fork)) {
            state = { ...state, [log]: { ...s, fork } };
            changed = true;
          }
          continue;
        }
        if (!verdict.grew && s.accepted && !s.fork) continue;
        // The center signs only the text; keep its own signature line, not the cosignatures of others.
        const own = opened.verified[0]!;
        const checkpoint = `${opened.text}\n— ${own.name} ${own.base64}\n`;
        const cosignature = verdict.grew || !s.accepted ? signCosignature(opened.text, { name, seed: opts.key.seed }, Math.floor(now().getTime() / 1000)) : s.accepted.cosignature;
        state = { ...state, [log]: { accepted: { origin: cp.origin, tree_size: cp.treeSize, root_hash: cp.rootHash.toString('base64'), checkpoint, cosignature } } };
        if (s.fork) opts.log(`ledger ${log}: the center shows a tree that extends size ${last?.treeSize ?? 0} again; fork report cleared`);
        changed = true;
      }
      if (changed) save();
    },
  };
}
