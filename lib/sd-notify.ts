/**
 * systemd readiness and watchdog without native code. The sd_notify protocol is a datagram on the AF_UNIX socket
 * named by $NOTIFY_SOCKET, and Node cannot send one (node:dgram speaks only UDP; node:net only stream sockets). So
 * the messages go through `systemd-notify VAR=VALUE...`, a child process: the unit sets `NotifyAccess=all` so the
 * manager accepts them from a process other than the main PID. Since systemd 246, systemd-notify waits (a notify
 * barrier) until the manager has processed the message, so the old race in which a short-lived sender exited
 * before the manager could attribute it to the unit is gone. The cost is one short process per message: READY
 * once, STOPPING once, and WATCHDOG every WatchdogSec/2.
 *
 * Outside systemd ($NOTIFY_SOCKET unset) every call is a no-op.
 */
import { execFile } from 'node:child_process';
import { realTimers, type Timers } from './timers.js';

export type NotifyRunner = (args: string[]) => Promise<void>;

export interface SdNotifier {
  /** True when running under a manager that listens ($NOTIFY_SOCKET is set). */
  readonly enabled: boolean;
  ready(status?: string): Promise<void>;
  stopping(status?: string): Promise<void>;
  status(text: string): Promise<void>;
  /** Starts WATCHDOG=1 pings at half the interval systemd asked for ($WATCHDOG_USEC), if it asked. */
  startWatchdog(isHealthy?: () => boolean): void;
  stopWatchdog(): void;
  /** The ping period in ms, or undefined when no watchdog is configured for this process. */
  readonly watchdogIntervalMs: number | undefined;
}

export function defaultRunner(bin = 'systemd-notify'): NotifyRunner {
  return (args) =>
    new Promise((resolve, reject) => {
      execFile(bin, args, { timeout: 5000, env: process.env }, (err, _stdout, stderr) => {
        if (err) reject(new Error(`${bin} ${args.join(' ')} failed: ${stderr.trim() || err.message}`, { cause: err }));
        else resolve();
      });
    });
}

/** One line of a STATUS= value: no newlines (each message line is an assignment). */
export function statusLine(text: string): string {
  return `STATUS=${text.replace(/[\r\n]+/g, ' ').slice(0, 200)}`;
}

/** The watchdog ping period for this process: half of WATCHDOG_USEC, if WATCHDOG_PID is unset or is us. */
export function watchdogInterval(env: NodeJS.ProcessEnv, pid = process.pid): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(100, Math.floor(usec / 1000 / 2));
}

export function createSdNotifier(opts: { env?: NodeJS.ProcessEnv; run?: NotifyRunner; onError?: (err: unknown) => void; pid?: number; timers?: Timers } = {}): SdNotifier {
  const env = opts.env ?? process.env;
  const enabled = Boolean(env.NOTIFY_SOCKET);
  const run = opts.run ?? defaultRunner();
  const onError = opts.onError ?? (() => undefined);
  const interval = enabled ? watchdogInterval(env, opts.pid) : undefined;
  const timers = opts.timers ?? realTimers;
  let timer: unknown;
  let inFlight = false;

  const send = async (assignments: string[]): Promise<void> => {
    if (!enabled) return;
    try {
      await run(assignments);
    } catch (err) {
      onError(err);
    }
  };

  return {
    enabled,
    watchdogIntervalMs: interval,
    ready: (status) => send(['READY=1', ...(status ? [statusLine(status)] : [])]),
    stopping: (status) => send(['STOPPING=1', ...(status ? [statusLine(status)] : [])]),
    status: (text) => send([statusLine(text)]),
    startWatchdog(isHealthy = () => true) {
      if (!interval || timer) return;
      // The timer firing at all proves the event loop is alive; `isHealthy` can add checks of its own. A ping
      // still running (a stalled systemd-notify) is not stacked with another.
      timer = timers.setInterval(() => {
        if (inFlight || !isHealthy()) return;
        inFlight = true;
        void send(['WATCHDOG=1']).finally(() => (inFlight = false));
      }, interval);
    },
    stopWatchdog() {
      if (timer !== undefined) timers.clearInterval(timer);
      timer = undefined;
    },
  };
}
