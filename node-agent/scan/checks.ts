/**
 * The registry of scan checks: each entry adapts the shared check context (roots, clock, exec, config) to one
 * check module's own options. The runner only knows this interface, so tests can add or replace checks.
 */
import type { Finding } from '../../protocol/scan.js';
import { checkClockSkew, CLOCK_SKEW_CHECK } from './clock-skew.js';
import { checkDiskUsage, DISK_USAGE_CHECK } from './disk-usage.js';
import type { ExecFileFn } from './exec-file.js';
import { checkFailedUnits, FAILED_UNITS_CHECK } from './failed-units.js';
import { checkFileIntegrity, FILE_INTEGRITY_CHECK } from './file-integrity.js';
import { checkListeningSockets, LISTENING_SOCKETS_CHECK } from './listening-sockets.js';
import { checkRebootRequired, REBOOT_REQUIRED_CHECK } from './reboot-required.js';
import type { ScanConfig } from './scan-config.js';
import { checkSshHardening, SSH_HARDENING_CHECK } from './ssh-hardening.js';
import { checkWorldWritable, WORLD_WRITABLE_CHECK } from './world-writable.js';

export interface CheckContext {
  config: ScanConfig;
  procRoot: string;
  etcRoot: string;
  runRoot: string;
  stateDir: string;
  now: () => Date;
  execFile: ExecFileFn;
  centerTime: Date | undefined;
  centerTimeObservedAt: Date | undefined;
  /** Aborted when the check's timeout fires or the whole scan is cancelled; long checks must honour it. */
  signal: AbortSignal;
  timeoutMs: number;
}

export interface ScanCheck {
  name: string;
  run(ctx: CheckContext): Promise<Finding[]>;
}

export const defaultChecks: readonly ScanCheck[] = [
  {
    name: FAILED_UNITS_CHECK,
    // Leave the child a little of the budget so its own timeout (which kills it) fires before the runner's.
    run: (ctx) => checkFailedUnits({ runRoot: ctx.runRoot, execFile: ctx.execFile, timeoutMs: Math.max(100, ctx.timeoutMs - 250), signal: ctx.signal }),
  },
  {
    name: DISK_USAGE_CHECK,
    run: (ctx) => checkDiskUsage({ mounts: ctx.config.mounts, thresholds: ctx.config.diskThresholds }),
  },
  {
    name: LISTENING_SOCKETS_CHECK,
    run: (ctx) => checkListeningSockets({ procRoot: ctx.procRoot, allowlist: ctx.config.socketAllowlist, signal: ctx.signal }),
  },
  {
    name: SSH_HARDENING_CHECK,
    run: (ctx) => checkSshHardening({ etcRoot: ctx.etcRoot }),
  },
  {
    name: FILE_INTEGRITY_CHECK,
    run: (ctx) =>
      checkFileIntegrity({
        paths: ctx.config.integrityPaths,
        stateDir: ctx.stateDir,
        now: ctx.now,
        maxFileBytes: ctx.config.integrityMaxFileBytes,
        signal: ctx.signal,
      }),
  },
  {
    name: WORLD_WRITABLE_CHECK,
    run: (ctx) => checkWorldWritable({ roots: ctx.config.worldWritableRoots, limits: ctx.config.walkLimits, signal: ctx.signal }),
  },
  {
    name: REBOOT_REQUIRED_CHECK,
    run: (ctx) => checkRebootRequired({ runRoot: ctx.runRoot, now: ctx.now, staleAfterDays: ctx.config.rebootStaleDays }),
  },
  {
    name: CLOCK_SKEW_CHECK,
    run: (ctx) =>
      checkClockSkew({ now: ctx.now, centerTime: ctx.centerTime, centerTimeObservedAt: ctx.centerTimeObservedAt, thresholds: ctx.config.clockSkewSeconds }),
  },
];
