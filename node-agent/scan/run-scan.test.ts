import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VaultMeshError } from '../../protocol/errors.js';
import { scanReportSchema, type Finding } from '../../protocol/scan.js';
import type { ScanCheck } from './checks.js';
import { createFinding } from './finding.js';
import { capFindings, runSovereignScan } from './run-scan.js';
import { defaultScanConfig, parseScanConfig } from './scan-config.js';

let state: string;
beforeEach(() => {
  state = mkdtempSync(join(tmpdir(), 'vm-scan-'));
});
afterEach(() => rmSync(state, { recursive: true, force: true }));

const deps = (over: Partial<Parameters<typeof runSovereignScan>[1]> = {}) => ({ nodeId: 'node-1', agentVersion: '0.1.0', stateDir: state, ...over });
const ok: ScanCheck = { name: 'ok', run: async () => [createFinding({ check: 'ok', severity: 'low', title: 'fine' })] };

describe('runSovereignScan with injected checks', () => {
  it('turns a hanging check into a timeout finding, aborts it, and still reports the others', async () => {
    let aborted = false;
    const hang: ScanCheck = {
      name: 'hang',
      run: (ctx) =>
        new Promise<Finding[]>(() => {
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
          });
        }),
    };
    const config = { ...defaultScanConfig(), timeoutsMs: { default: 5_000, hang: 50 } };
    const started = Date.now();
    const report = await runSovereignScan(config, deps({ checks: [ok, hang] }));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(aborted).toBe(true);
    expect(report.findings).toEqual([
      expect.objectContaining({ check: 'ok', severity: 'low' }),
      expect.objectContaining({ check: 'hang', severity: 'info', title: 'check failed', evidence: { reason: 'timeout', timeout_ms: 50 } }),
    ]);
    expect(report.summary).toEqual({ critical: 0, high: 0, medium: 0, low: 1, info: 1, checks_run: 2, checks_failed: 1 });
  });

  it('turns a throwing check (sync or async) into a failure finding', async () => {
    const syncThrow: ScanCheck = {
      name: 'sync-throw',
      run: () => {
        throw new Error('boom');
      },
    };
    const asyncThrow: ScanCheck = { name: 'async-throw', run: async () => Promise.reject(Object.assign(new Error('denied'), { code: 'EACCES' })) };
    const report = await runSovereignScan(defaultScanConfig(), deps({ checks: [syncThrow, asyncThrow] }));
    expect(report.findings.map((f) => f.detail)).toEqual(['sync-throw: boom', 'async-throw: EACCES: denied']);
    expect(report.summary.checks_failed).toBe(2);
  });

  it('skips disabled checks and fills id, trigger and command_id', async () => {
    const report = await runSovereignScan(
      { ...defaultScanConfig(), disabledChecks: ['ok'] },
      deps({ checks: [ok], trigger: 'command', commandId: 'cmd-42', id: 'scan-fixed' }),
    );
    expect(report).toMatchObject({ id: 'scan-fixed', trigger: 'command', command_id: 'cmd-42', findings: [], summary: { checks_run: 0 } });
  });

  it('generates a fresh id and uses the injected clock', async () => {
    const t = new Date('2026-05-01T10:00:00Z');
    const report = await runSovereignScan(defaultScanConfig(), deps({ checks: [ok], now: () => t }));
    expect(report.id).toMatch(/^scan-[0-9a-f-]{36}$/);
    expect(report.started_at).toBe('2026-05-01T10:00:00.000Z');
    expect(report.trigger).toBe('manual');
  });

  it('reports unfinished checks as failed when the whole scan is cancelled', async () => {
    const controller = new AbortController();
    const slow: ScanCheck = { name: 'slow', run: () => new Promise(() => undefined) };
    setTimeout(() => controller.abort(), 20);
    const report = await runSovereignScan(defaultScanConfig(), deps({ checks: [slow], signal: controller.signal }));
    expect(report.findings[0]).toMatchObject({ title: 'check failed', detail: 'slow: scan cancelled' });
  });

  it('clamps oversized host data into a valid report', async () => {
    const noisy: ScanCheck = {
      name: 'noisy',
      run: async () => [{ check: 'noisy', severity: 'medium', title: 't'.repeat(500), detail: 'd'.repeat(5000), evidence: { path: 'p'.repeat(5000), n: Number.NaN } }],
    };
    const report = await runSovereignScan(defaultScanConfig(), deps({ checks: [noisy] }));
    expect(report.findings[0]?.title).toHaveLength(200);
    expect(report.findings[0]?.evidence).toMatchObject({ n: null });
  });

  it('throws a VaultMeshError for an invalid node id (a caller bug, not a host problem)', async () => {
    await expect(runSovereignScan(defaultScanConfig(), deps({ checks: [], nodeId: '../x' }))).rejects.toBeInstanceOf(VaultMeshError);
  });
});

describe('capFindings', () => {
  it('keeps the most severe findings in order and notes the truncation', () => {
    const findings = Array.from({ length: 10 }, (_, i) => createFinding({ check: 'c', severity: i === 7 ? 'high' : 'info', title: `f${i}` }));
    const capped = capFindings(findings, 4);
    expect(capped.map((f) => f.title)).toEqual(['f0', 'f1', 'f7', 'findings truncated']);
    expect(capped[3]?.evidence).toEqual({ total: 10, dropped: 7 });
    expect(capFindings(findings, 10)).toHaveLength(10);
  });
});

describe('parseScanConfig', () => {
  it('layers input over the defaults', () => {
    const c = parseScanConfig({ mounts: ['/data'], walkLimits: { maxEntries: 10 }, timeoutsMs: { 'world-writable': 1000 } });
    expect(c.mounts).toEqual(['/data']);
    expect(c.walkLimits).toMatchObject({ maxEntries: 10, maxDepth: 16 });
    expect(c.timeoutsMs).toMatchObject({ default: 10_000, 'world-writable': 1000 });
    expect(parseScanConfig()).toEqual(defaultScanConfig());
  });

  it.each([
    ['relative mount', { mounts: ['data'] }],
    ['port out of range', { socketAllowlist: [{ proto: 'tcp', port: 70000 }] }],
    ['unknown key', { mount: ['/'] }],
    ['bad timeout key', { timeoutsMs: { 'No Such': 5 } }],
    ['not an object', [1]],
  ])('rejects %s with VALIDATION_ERROR', (_n, input) => {
    expect(() => parseScanConfig(input)).toThrow(expect.objectContaining({ code: 'VALIDATION_ERROR' }));
  });
});

describe('runSovereignScan on the real host', () => {
  it('completes every default check without throwing, with a valid report', async () => {
    const config = defaultScanConfig();
    config.walkLimits.maxEntries = 20_000; // keep the test quick on big images
    const report = await runSovereignScan(config, deps({ centerTime: new Date() }));
    expect(scanReportSchema.safeParse(report).success).toBe(true);
    expect(report.summary.checks_run).toBe(8);
    expect(report.summary.checks_failed).toBe(0);
    const checks = new Set(report.findings.map((f) => f.check));
    expect(checks.has('file-integrity')).toBe(true); // first scan: baseline created
    // In a container without systemd as PID 1 the failed-units check degrades to one info finding.
    const units = report.findings.filter((f) => f.check === 'failed-units');
    if (units.some((f) => f.title === 'source unavailable')) {
      expect(units).toEqual([expect.objectContaining({ severity: 'info' })]);
    }
    // A second scan against the fresh baseline sees no drift in the integrity paths.
    const again = await runSovereignScan(config, deps());
    expect(again.findings.filter((f) => f.check === 'file-integrity' && f.severity !== 'info')).toEqual([]);
  });
});
