/**
 * Leadership: which of the centers sharing one log runs the singletons (signing ledger heads, the orchestrator, the
 * attention monitor, webhook delivery, heartbeat retention, the command expiry sweep). Several replicas may accept
 * writes; exactly one at a time leads. A JSONL center is alone on its log dir (the dir lock), so it always leads (`soleLeader`); with
 * `--store postgres` the leader is whoever holds a session advisory lock (store/postgres-leadership.ts).
 *
 * Consumers subscribe with `onChange` and start/stop their jobs on it. A lost lock connection deposes the leader at
 * once (the callback runs before anything else learns it), and a deposed leader's head writes are fenced in the
 * database by the lock and the term, so a late callback cannot fork the ledger.
 */

export type LeaderRole = 'leader' | 'follower';

export interface Leadership {
  readonly role: LeaderRole;
  readonly isLeader: boolean;
  /** The fencing term of the current leadership (rises by one at each takeover); 0 when not leading. */
  readonly term: number;
  /** How many times this replica became or stopped being leader. */
  readonly changes: number;
  /** Called with true on becoming leader and false on losing it, in order; listeners must not throw. */
  onChange(listener: (leader: boolean) => void): () => void;
  /** Starts contending (a PostgreSQL follower retries on its takeover period). */
  start(): void;
  /** Gives leadership up (releasing the lock) and stops contending. */
  close(): Promise<void>;
}

/** The single center of a JSONL log dir: leader from `start()` until `close()`. */
export function soleLeader(): Leadership {
  const listeners = new Set<(leader: boolean) => void>();
  let leading = false;
  let changes = 0;
  const set = (v: boolean) => {
    if (v === leading) return;
    leading = v;
    changes++;
    for (const l of [...listeners]) l(v);
  };
  return {
    get role(): LeaderRole {
      return leading ? 'leader' : 'follower';
    },
    get isLeader() {
      return leading;
    },
    get term() {
      return leading ? 1 : 0;
    },
    get changes() {
      return changes;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    start: () => set(true),
    close: async () => set(false),
  };
}

/**
 * Runs `start` while this replica leads and `stop` when it stops leading (or at once, if it already leads). Used for
 * every singleton so each start/stop pair is written once.
 */
export function whileLeader(leadership: Leadership, job: { start(): void; stop(): void | Promise<void> }): () => void {
  if (leadership.isLeader) job.start();
  return leadership.onChange((leader) => {
    if (leader) job.start();
    else void job.stop();
  });
}
