/**
 * Host metrics from the real host: /proc/loadavg, /proc/meminfo (used = MemTotal − MemAvailable), statfs of the
 * vaultmesh root, /proc/uptime, and `systemctl is-active` for configured units (execFile, no shell).
 */
import { execFile } from 'node:child_process';
import { readFile, statfs } from 'node:fs/promises';
import type { HostMetrics } from '../protocol/agent-api.js';

export interface HostSources {
  procRoot?: string;
  execFile?: (cmd: string, args: string[], timeoutMs: number) => Promise<{ stdout: string; code: number | null }>;
}

export const runFile = (cmd: string, args: string[], timeoutMs: number) =>
  new Promise<{ stdout: string; code: number | null }>((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return reject(err);
      resolve({ stdout: String(stdout), code: err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0 });
    });
  });

export function parseLoadavg(text: string): [number, number, number] {
  const [a, b, c] = text.trim().split(/\s+/).map(Number);
  return [a ?? 0, b ?? 0, c ?? 0].map((n) => (Number.isFinite(n) && n >= 0 ? n : 0)) as [number, number, number];
}

export function parseMeminfo(text: string): { total: number; used: number } {
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+)\\s*kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const total = kb('MemTotal') ?? 0;
  const available = kb('MemAvailable') ?? (kb('MemFree') ?? 0) + (kb('Cached') ?? 0) + (kb('Buffers') ?? 0);
  return { total, used: Math.max(0, total - available) };
}

export async function collectMetrics(root: string, src: HostSources = {}): Promise<HostMetrics> {
  const proc = src.procRoot ?? '/proc';
  const [loadavg, meminfo, uptime, fs] = await Promise.all([
    readFile(`${proc}/loadavg`, 'utf8').catch(() => '0 0 0'),
    readFile(`${proc}/meminfo`, 'utf8').catch(() => ''),
    readFile(`${proc}/uptime`, 'utf8').catch(() => '0'),
    statfs(root).catch(() => statfs('/')),
  ]);
  const mem = parseMeminfo(meminfo);
  const total = fs.blocks * fs.bsize;
  return {
    load: parseLoadavg(loadavg),
    mem_used_bytes: mem.used,
    mem_total_bytes: mem.total,
    disk_used_bytes: Math.max(0, total - fs.bfree * fs.bsize),
    disk_total_bytes: total,
    uptime_s: Math.max(0, Number.parseFloat(uptime) || 0),
  };
}

/** `systemctl is-active` per unit; a host without systemctl reports every unit as `unknown`. */
export async function serviceStates(units: string[], src: HostSources = {}): Promise<Record<string, string>> {
  const run = src.execFile ?? runFile;
  const out: Record<string, string> = {};
  await Promise.all(
    units.map(async (unit) => {
      try {
        const { stdout } = await run('systemctl', ['is-active', '--', unit], 5000);
        out[unit] = stdout.trim().split('\n')[0]?.slice(0, 32) || 'unknown';
      } catch {
        out[unit] = 'unknown';
      }
    }),
  );
  return out;
}
