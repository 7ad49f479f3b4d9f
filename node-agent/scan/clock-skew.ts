/**
 * Check `clock-skew`: the agent's clock against the command center's. The agent learns the center's time from the
 * HTTP `Date` header of its last response (1 s resolution, plenty for thresholds of 30 s and 5 min). Skew matters
 * because signed commands carry validity windows and findings carry timestamps.
 *
 * Comparing that header with the clock *now* would count the time since the response as skew, so the caller may
 * pass when the header was received (`centerTimeObservedAt`, the agent's clock at that moment); without it the
 * header is assumed fresh.
 */
import type { Finding, Severity } from '../../protocol/scan.js';
import { createFinding } from './finding.js';

export const CLOCK_SKEW_CHECK = 'clock-skew';

export interface ClockSkewThresholds {
  mediumSeconds: number;
  highSeconds: number;
}

export interface ClockSkewOptions {
  now: () => Date;
  centerTime?: Date | undefined;
  centerTimeObservedAt?: Date | undefined;
  thresholds?: ClockSkewThresholds;
}

export const DEFAULT_CLOCK_SKEW_THRESHOLDS: ClockSkewThresholds = { mediumSeconds: 30, highSeconds: 300 };

/** Agent clock minus center clock, in seconds (positive: the agent is ahead). */
export function skewSeconds(agentTime: Date, centerTime: Date): number {
  return (agentTime.getTime() - centerTime.getTime()) / 1000;
}

export function severityForSkew(skew: number, t: ClockSkewThresholds): Severity | undefined {
  const abs = Math.abs(skew);
  if (abs > t.highSeconds) return 'high';
  if (abs > t.mediumSeconds) return 'medium';
  return undefined;
}

export async function checkClockSkew(options: ClockSkewOptions): Promise<Finding[]> {
  const { centerTime } = options;
  if (!centerTime || Number.isNaN(centerTime.getTime())) {
    return [
      createFinding({
        check: CLOCK_SKEW_CHECK,
        severity: 'info',
        title: 'center time unknown',
        detail: 'No response from the command center carried a usable Date header yet, so clock skew cannot be measured.',
      }),
    ];
  }
  const agentTime = options.centerTimeObservedAt ?? options.now();
  const skew = skewSeconds(agentTime, centerTime);
  const severity = severityForSkew(skew, options.thresholds ?? DEFAULT_CLOCK_SKEW_THRESHOLDS);
  if (!severity) return [];
  const rounded = Math.round(skew);
  return [
    createFinding({
      check: CLOCK_SKEW_CHECK,
      severity,
      title: `clock ${rounded > 0 ? 'ahead of' : 'behind'} the center by ${Math.abs(rounded)} s`,
      detail: `The agent clock differs from the command center by ${Math.abs(rounded)} s; signed commands may be rejected as expired or not yet valid. Check NTP (timedatectl, chronyc tracking).`,
      evidence: { skew_seconds: rounded, agent_time: agentTime.toISOString(), center_time: centerTime.toISOString() },
    }),
  ];
}
