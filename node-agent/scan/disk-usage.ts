/**
 * Check `disk-usage`: block and inode usage of configured mount points via statfs(2), against thresholds.
 * Percentages follow df(1): used / (used + available to unprivileged users), so the root-reserved blocks count
 * as unavailable, which is what a service running as a normal user experiences.
 */
import { statfs as nodeStatfs } from 'node:fs/promises';
import type { Finding, Severity } from '../../protocol/scan.js';
import { createFinding, describeError, errnoCode, sourceUnavailable } from './finding.js';

export const DISK_USAGE_CHECK = 'disk-usage';

export interface DiskThresholds {
  /** Usage at or above this percentage is `medium`. */
  mediumPercent: number;
  /** Usage at or above this percentage is `high`. */
  highPercent: number;
}

export interface StatFsLike {
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
}

export interface DiskUsageOptions {
  mounts: readonly string[];
  thresholds: DiskThresholds;
  statfs?: (path: string) => Promise<StatFsLike>;
}

export interface Usage {
  percent: number;
  used: number;
  total: number;
}

/** Block usage the way df computes "Use%"; undefined for a file system that reports no blocks (procfs-like). */
export function blockUsage(s: StatFsLike): Usage | undefined {
  const used = s.blocks - s.bfree;
  const denominator = used + s.bavail;
  if (s.blocks <= 0 || denominator <= 0) return undefined;
  return { percent: (used / denominator) * 100, used: used * s.bsize, total: s.blocks * s.bsize };
}

/** Inode usage; undefined where the file system has no fixed inode table (btrfs, some overlays report 0). */
export function inodeUsage(s: StatFsLike): Usage | undefined {
  if (s.files <= 0) return undefined;
  const used = s.files - s.ffree;
  return { percent: (used / s.files) * 100, used, total: s.files };
}

export function severityForPercent(percent: number, t: DiskThresholds): Severity | undefined {
  if (percent >= t.highPercent) return 'high';
  if (percent >= t.mediumPercent) return 'medium';
  return undefined;
}

const round1 = (n: number): number => Math.round(n * 10) / 10;

export async function checkDiskUsage(options: DiskUsageOptions): Promise<Finding[]> {
  const statfs = options.statfs ?? ((p: string) => nodeStatfs(p));
  const findings: Finding[] = [];
  for (const mount of options.mounts) {
    let s: StatFsLike;
    try {
      s = await statfs(mount);
    } catch (err) {
      const code = errnoCode(err);
      findings.push(
        code === 'ENOENT'
          ? sourceUnavailable(DISK_USAGE_CHECK, `mount point ${mount} does not exist on this host.`, { mount })
          : createFinding({ check: DISK_USAGE_CHECK, severity: 'info', title: 'statfs failed', detail: `${mount}: ${describeError(err)}`, evidence: { mount, error: code ?? null } }),
      );
      continue;
    }
    const blocks = blockUsage(s);
    const blockSeverity = blocks && severityForPercent(blocks.percent, options.thresholds);
    if (blocks && blockSeverity) {
      findings.push(
        createFinding({
          check: DISK_USAGE_CHECK,
          severity: blockSeverity,
          title: `disk ${mount} ${Math.floor(blocks.percent)}% full`,
          detail: `${mount} uses ${round1(blocks.percent)}% of its space (threshold ${blockSeverity === 'high' ? options.thresholds.highPercent : options.thresholds.mediumPercent}%).`,
          evidence: { mount, kind: 'blocks', used_percent: round1(blocks.percent), used_bytes: blocks.used, total_bytes: blocks.total, avail_bytes: s.bavail * s.bsize },
        }),
      );
    }
    const inodes = inodeUsage(s);
    const inodeSeverity = inodes && severityForPercent(inodes.percent, options.thresholds);
    if (inodes && inodeSeverity) {
      findings.push(
        createFinding({
          check: DISK_USAGE_CHECK,
          severity: inodeSeverity,
          title: `inodes on ${mount} ${Math.floor(inodes.percent)}% used`,
          detail: `${mount} uses ${round1(inodes.percent)}% of its inodes; new files fail when they run out even with free space.`,
          evidence: { mount, kind: 'inodes', used_percent: round1(inodes.percent), used_inodes: inodes.used, total_inodes: inodes.total },
        }),
      );
    }
  }
  return findings;
}
