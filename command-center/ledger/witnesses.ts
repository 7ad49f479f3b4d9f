/**
 * The fleet as the ledgers' witnesses (docs/LEDGER.md, "Agents as witnesses"), center side. Each heartbeat tells the
 * center, per ledger, the checkpoint size the agent last accepted and its `cosignature/v1` on it; the answer offers
 * the latest checkpoint and the consistency proof from that size. Cosignatures are verified with the node's enrolled
 * key against the checkpoint the center itself makes for that size, and the latest per node is kept in memory (every
 * heartbeat repeats it, so a restart loses at most one heartbeat interval of them). The checkpoint served at
 * `/ledger/<log>/checkpoint` carries the most recent cosignatures of exactly its tree, up to `keep`.
 */
import { formatCheckpoint } from '../../protocol/checkpoint.js';
import { verifyCosignature } from '../../protocol/cosignature.js';
import { fromHex, toHex } from '../../protocol/hex.js';
import { nodeWitnessName, type CheckpointLog } from '../../protocol/ledger-checkpoints.js';
import { parseNote } from '../../protocol/signed-note.js';
import type { LedgerOffer, WitnessReport } from '../../protocol/agent-api.js';
import type { CheckpointWriter } from './checkpoints.js';
import type { Ledger } from './ledger.js';
import type { Services } from '../services.js';

export interface Cosignature {
  node_id: string;
  tree_size: number;
  /** POSIX seconds, from the cosignature. */
  timestamp: number;
  /** The signature line, newline included. */
  line: string;
}

export interface WitnessStatus {
  tree_size: number;
  /** Nodes whose latest cosignature is on the current checkpoint. */
  witnessed_latest: number;
  witnesses: Omit<Cosignature, 'line'>[];
  /** External tlog-witness witnesses (witness-push.ts) and what they last cosigned. */
  external: { name: string; tree_size: number; timestamp: number }[];
  /** Nodes whose last heartbeat reported a fork: the size they accepted and what they were shown. */
  forks: { node_id: string; tree_size: number; reason: string; seen_size: number }[];
}

export interface WitnessBook {
  /** Takes an agent's report for one log; returns why its cosignature was not kept, if it was not. */
  accept(nodeId: string, log: CheckpointLog, report: WitnessReport): string | undefined;
  /** The latest checkpoint and the consistency proof from `fromSize` (empty when the agent claims more than we have). */
  offer(log: CheckpointLog, fromSize: number): LedgerOffer;
  /** The latest checkpoint with the most recent witness cosignatures of its tree appended. */
  cosignedNote(log: CheckpointLog): string | undefined;
  status(log: CheckpointLog): WitnessStatus;
  /** Keeps a verified cosignature of an external witness (`name`) on our checkpoint of `treeSize`. */
  keepExternal(name: string, log: CheckpointLog, c: { tree_size: number; timestamp: number; line: string }): void;
}

export interface WitnessBookOptions {
  ledgers: Record<CheckpointLog, Pick<Ledger, 'hashRange' | 'consistencyProof'>>;
  checkpoints: Record<CheckpointLog, Pick<CheckpointWriter, 'note' | 'treeSize' | 'origin'>>;
  /** The enrolled public key (hex) of an approved node, else undefined. */
  nodeKey: (nodeId: string) => string | undefined;
  /** Cosignatures appended to a served checkpoint. */
  keep: number;
  now?: () => Date;
  /** Accepted clock skew of cosignature timestamps (seconds). */
  maxSkewSecs?: number;
}

export function createWitnessBook(opts: WitnessBookOptions): WitnessBook {
  const now = opts.now ?? (() => new Date());
  const skew = opts.maxSkewSecs ?? 300;
  const latest: Record<CheckpointLog, Map<string, Cosignature>> = { scans: new Map(), commands: new Map() };
  const external: Record<CheckpointLog, Map<string, Cosignature>> = { scans: new Map(), commands: new Map() };
  const forks: Record<CheckpointLog, Map<string, WitnessStatus['forks'][number]>> = { scans: new Map(), commands: new Map() };

  // The served note is asked for on every heartbeat (10,000 nodes: hundreds a second), so it is cached per log and
  // rebuilt only when a cosignature of the current tree arrives or the tree changes, not sorted per request.
  const served: Partial<Record<CheckpointLog, { note: string; size: number }>> = {};
  const invalidate = (log: CheckpointLog, size: number): void => {
    if (size === opts.checkpoints[log].treeSize()) delete served[log];
  };

  /** The note text of our checkpoint of size `size` (the tree is append-only in memory, so any past size). */
  const textAt = (log: CheckpointLog, size: number): string =>
    formatCheckpoint({ origin: opts.checkpoints[log].origin, treeSize: size, rootHash: Buffer.from(opts.ledgers[log].hashRange(0, size)), extensions: [] });

  return {
    accept(nodeId, log, report) {
      if (report.fork) forks[log].set(nodeId, { node_id: nodeId, tree_size: report.tree_size, reason: report.fork.reason, seen_size: report.fork.seen_size });
      else forks[log].delete(nodeId);
      if (report.cosignature === undefined) return undefined;
      const line = report.cosignature.endsWith('\n') ? report.cosignature : `${report.cosignature}\n`;
      const prev = latest[log].get(nodeId);
      const key = opts.nodeKey(nodeId);
      if (!key) {
        // Revoked since: its cosignatures no longer count.
        if (prev && latest[log].delete(nodeId)) invalidate(log, prev.tree_size);
        return 'the node is not approved';
      }
      if (prev && prev.line === line && prev.tree_size === report.tree_size) return undefined; // re-sent every heartbeat: verified already
      if (report.tree_size > opts.checkpoints[log].treeSize()) return `size ${report.tree_size} is beyond the latest checkpoint`;
      const text = textAt(log, report.tree_size);
      let sig;
      try {
        sig = parseNote(`${text}\n${line}`).signatures;
      } catch {
        return 'not a signature line';
      }
      if (sig.length !== 1) return 'not one signature line';
      const timestamp = verifyCosignature(text, sig[0]!, { name: nodeWitnessName(nodeId), publicKey: fromHex(key, 32)! }, { notAfter: Math.floor(now().getTime() / 1000) + skew });
      if (timestamp === undefined) return 'the cosignature does not verify on our checkpoint of that size';
      if (!prev || prev.tree_size < report.tree_size || (prev.tree_size === report.tree_size && prev.timestamp <= timestamp)) {
        latest[log].set(nodeId, { node_id: nodeId, tree_size: report.tree_size, timestamp, line });
        invalidate(log, report.tree_size);
      }
      return undefined;
    },

    offer(log, fromSize) {
      const size = opts.checkpoints[log].treeSize();
      const proof = fromSize <= size ? opts.ledgers[log].consistencyProof(fromSize, size).map(toHex) : [];
      return { checkpoint: this.cosignedNote(log) ?? '', from_size: fromSize, proof };
    },

    cosignedNote(log) {
      const note = opts.checkpoints[log].note();
      if (note === undefined || opts.keep === 0) return note;
      const size = opts.checkpoints[log].treeSize();
      const cached = served[log];
      if (cached && cached.size === size && cached.note.startsWith(note)) return cached.note;
      const newest = (m: Map<string, Cosignature>) =>
        [...m.values()].filter((c) => c.tree_size === size).sort((a, b) => b.timestamp - a.timestamp || a.node_id.localeCompare(b.node_id));
      // External witnesses first: they are independent of the operator, which the fleet's nodes are not.
      const lines = [...newest(external[log]), ...newest(latest[log])].slice(0, opts.keep).map((c) => c.line);
      served[log] = { note: note + lines.join(''), size };
      return served[log].note;
    },

    status(log) {
      const size = opts.checkpoints[log].treeSize();
      const witnesses = [...latest[log].values()].map(({ line: _line, ...rest }) => rest).sort((a, b) => a.node_id.localeCompare(b.node_id));
      const forked = [...forks[log].values()].sort((a, b) => a.node_id.localeCompare(b.node_id));
      const ext = [...external[log].values()].map((c) => ({ name: c.node_id, tree_size: c.tree_size, timestamp: c.timestamp })).sort((a, b) => a.name.localeCompare(b.name));
      return { tree_size: size, witnessed_latest: witnesses.filter((w) => w.tree_size === size).length, witnesses, external: ext, forks: forked };
    },

    keepExternal(name, log, c) {
      const prev = external[log].get(name);
      if (!prev || prev.tree_size <= c.tree_size) {
        external[log].set(name, { node_id: name, ...c });
        invalidate(log, c.tree_size);
      }
    },
  };
}

const LOGS: readonly CheckpointLog[] = ['scans', 'commands'];

/**
 * The heartbeat's witness exchange: keeps the cosignatures the agent sends, opens an incident (once per node, log and
 * accepted size) for a fork it reports, and returns the offers for the answer.
 */
export async function witnessHeartbeat(
  services: Pick<Services, 'witnesses' | 'submit'>,
  nodeId: string,
  reports: Partial<Record<CheckpointLog, WitnessReport>> | undefined,
): Promise<Record<CheckpointLog, LedgerOffer>> {
  const offers = {} as Record<CheckpointLog, LedgerOffer>;
  for (const log of LOGS) {
    const report = reports?.[log];
    if (report) {
      services.witnesses.accept(nodeId, log, report);
      if (report.fork) {
        await services.submit({
          id: `ledger-fork.${nodeId}.${log}.${report.tree_size}`,
          kind: 'incident',
          node_id: nodeId,
          author: `node:${nodeId}`,
          body: {
            title: `ledger_fork: ${nodeId} saw the ${log} log fork after size ${report.tree_size}`,
            severity: 'critical',
            status: 'open',
            description: `${report.fork.message} (shown size ${report.fork.seen_size}). The agent keeps its checkpoint of size ${report.tree_size} and cosigns nothing past it. Check the log with vaultmesh ledger verify and restore it from a backup.`,
          },
        });
      }
    }
    offers[log] = services.witnesses.offer(log, report?.tree_size ?? 0);
  }
  return offers;
}
