import { describe, expect, it } from 'vitest';
import { findingSchema, scanReportSchema, SEVERITIES, severityRank, summarize, worstSeverity, type Finding } from './scan.js';

const finding = (severity: Finding['severity'], check = 'disk-usage'): Finding => ({ check, severity, title: 't', detail: '', evidence: {} });

function report(findings: Finding[]) {
  return {
    id: 'scan-1',
    node_id: 'node-1',
    started_at: '2026-01-01T00:00:00.000Z',
    finished_at: '2026-01-01T00:00:01.000Z',
    agent_version: '0.1.0',
    findings,
    summary: summarize(findings, { checks_run: 8, checks_failed: 1 }),
    trigger: 'schedule' as const,
  };
}

describe('severities', () => {
  it('are ordered most severe first and ranked accordingly', () => {
    expect(SEVERITIES).toEqual(['critical', 'high', 'medium', 'low', 'info']);
    expect(SEVERITIES.map(severityRank)).toEqual([4, 3, 2, 1, 0]);
    expect(worstSeverity([finding('low'), finding('high'), finding('info')])).toBe('high');
    expect(worstSeverity([])).toBeUndefined();
  });
});

describe('summarize', () => {
  it('counts per severity and carries check counts', () => {
    expect(summarize([finding('high'), finding('high'), finding('info')], { checks_run: 3, checks_failed: 0 })).toEqual({
      critical: 0, high: 2, medium: 0, low: 0, info: 1, checks_run: 3, checks_failed: 0,
    });
    expect(summarize([])).toEqual({ critical: 0, high: 0, medium: 0, low: 0, info: 0, checks_run: 0, checks_failed: 0 });
  });
});

describe('findingSchema', () => {
  it.each([
    ['unknown severity', { ...finding('high'), severity: 'urgent' }],
    ['title too long', { ...finding('high'), title: 'x'.repeat(201) }],
    ['detail too long', { ...finding('high'), detail: 'x'.repeat(2001) }],
    ['nested evidence', { ...finding('high'), evidence: { a: { b: 1 } } }],
    ['too many evidence keys', { ...finding('high'), evidence: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])) }],
    ['non-finite evidence', { ...finding('high'), evidence: { a: Number.POSITIVE_INFINITY } }],
    ['extra key', { ...finding('high'), extra: 1 }],
    ['bad check name', { ...finding('high'), check: 'Disk Usage' }],
  ])('rejects %s', (_name, value) => {
    expect(findingSchema.safeParse(value).success).toBe(false);
  });

  it('accepts flat scalar evidence', () => {
    expect(findingSchema.safeParse({ ...finding('medium'), evidence: { path: '/x', port: 22, loopback: false, inode: null } }).success).toBe(true);
  });
});

describe('scanReportSchema', () => {
  it('accepts a consistent report', () => {
    expect(scanReportSchema.parse(report([finding('high'), finding('info')])).summary.high).toBe(1);
  });

  it('rejects a summary that disagrees with the findings', () => {
    const r = report([finding('high')]);
    r.summary.high = 0;
    const res = scanReportSchema.safeParse(r);
    expect(res.success).toBe(false);
    expect(res.error?.issues[0]?.path).toEqual(['summary', 'high']);
  });

  it.each([
    ['finished before started', { finished_at: '2025-12-31T23:59:59Z' }],
    ['command_id without command trigger', { command_id: 'cmd-1' }],
    ['bad node id', { node_id: '../etc' }],
    ['unknown trigger', { trigger: 'cron' }],
    ['non RFC 3339 time', { started_at: 'yesterday' }],
    ['extra key', { hostname: 'x' }],
  ])('rejects %s', (_name, patch) => {
    expect(scanReportSchema.safeParse({ ...report([]), ...patch }).success).toBe(false);
  });

  it('accepts command_id with the command trigger and bounds the findings', () => {
    expect(scanReportSchema.safeParse({ ...report([]), trigger: 'command', command_id: 'cmd-1' }).success).toBe(true);
    const many = Array.from({ length: 501 }, () => finding('info'));
    expect(scanReportSchema.safeParse(report(many)).success).toBe(false);
  });
});
