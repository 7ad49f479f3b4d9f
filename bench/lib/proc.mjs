/**
 * Process figures from /proc (Linux): RSS and CPU time of a child, and a description of this machine for reports.
 * Everything returns undefined where /proc is not available rather than throwing.
 */
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';

let clkTck;
function ticksPerSecond() {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** Resident set size (VmRSS) and its peak (VmHWM) of `pid`, in MB (10^6 bytes). */
export function memoryOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
    return { rssMb: (kb('VmRSS') * 1024) / 1e6, hwmMb: (kb('VmHWM') * 1024) / 1e6 };
  } catch {
    return { rssMb: undefined, hwmMb: undefined };
  }
}

/** User + system CPU seconds consumed by `pid` so far (utime + stime of /proc/<pid>/stat). */
export function cpuSecondsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name (which may contain spaces): state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** Samples a child's CPU use (in % of one core) between `start()` and `stop()`. */
export function cpuMeter(pid) {
  let c0 = 0;
  let t0 = 0;
  return {
    start() {
      c0 = cpuSecondsOf(pid) ?? NaN;
      t0 = performance.now();
    },
    stop() {
      const secs = (performance.now() - t0) / 1000;
      return (100 * ((cpuSecondsOf(pid) ?? NaN) - c0)) / secs;
    },
  };
}

export function loadAverage() {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
}

export function machineDescription() {
  const c = cpus();
  return {
    cpu: c[0]?.model?.trim() ?? 'unknown',
    cores: c.length,
    ramGb: +(totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    load: loadAverage(),
  };
}
