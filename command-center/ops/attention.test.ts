import { describe, expect, it } from 'vitest';
import type { Heartbeat } from '../../protocol/agent-api.js';
import { assessNode, applyAttentionEvent, journaledStatus, type AttentionPolicy } from './attention.js';
import { createFleetState, type NodeRecord } from '../fleet/fleet-state.js';
import { HeartbeatHistory } from '../fleet/heartbeat-history.js';
import { nodeStatus } from '../fleet/node-status.js';

const T0 = Date.parse('2025-03-01T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const policy: AttentionPolicy = { heartbeatIntervalMs: 30_000 };

function heartbeat(over: Partial<Heartbeat> = {}): Heartbeat {
  return {
    node_id: 'n1',
    hostname: 'h1',
    os_profile: 'ubuntu',
    cloudflare_ok: true,
    services_ok: true,
    vaultmesh_root: '/srv/vm',
    timestamp: iso(T0),
    agent_version: '1.0.0',
    metrics: { load: [0.1, 0.1, 0.1], mem_used_bytes: 1e9, mem_total_bytes: 8e9, disk_used_bytes: 10e9, disk_total_bytes: 100e9, uptime_s: 100 },
    ...over,
  };
}

function node(over: Partial<NodeRecord> & { latest_scan?: unknown } = {}): NodeRecord {
  return {
    node_id: 'n1',
    hostname: 'h1',
    os_profile: 'ubuntu',
    enrollment: 'approved',
    public_key: '00'.repeat(32),
    key_id: 'k',
    agent_version: '1.0.0',
    facts: {},
    enrolled_at: iso(T0 - 3600_000),
    decided_at: iso(T0 - 3600_000),
    last_seen: iso(T0),
    last_heartbeat: heartbeat(),
    heartbeat_count: 1,
    history: new HeartbeatHistory(2),
    tags: [],
    ...over,
  } as NodeRecord;
}

const metrics = (m: Partial<Heartbeat['metrics']>) => heartbeat({ metrics: { ...heartbeat().metrics, ...m } });

type Row = [name: string, n: NodeRecord, nowMs: number, pol: AttentionPolicy, status: string, codes: string[]];
const rows: Row[] = [
  ['healthy', node(), T0 + 10_000, policy, 'ok', []],
  ['exactly 2× interval is not late', node(), T0 + 60_000, policy, 'ok', []],
  ['stale past 2× → attn', node(), T0 + 61_000, policy, 'attn', ['STALE']],
  ['stale past 5× → crit', node(), T0 + 151_000, policy, 'crit', ['STALE']],
  ['stale thresholds configurable', node(), T0 + 61_000, { ...policy, staleAttnAfter: 3 }, 'ok', []],
  ['never seen, approved long ago → crit', node({ last_seen: undefined, last_heartbeat: undefined }), T0, policy, 'crit', ['STALE']],
  ['never seen, just approved → ok', node({ last_seen: undefined, last_heartbeat: undefined, decided_at: iso(T0 - 5000) }), T0, policy, 'ok', []],
  ['services failing', node({ last_heartbeat: heartbeat({ services_ok: false, services: { 'nginx.service': 'failed', 'sshd.service': 'active' } }) }), T0, policy, 'attn', ['SERVICES_FAILED']],
  ['cloudflare down', node({ last_heartbeat: heartbeat({ cloudflare_ok: false }) }), T0, policy, 'attn', ['CLOUDFLARE_DOWN']],
  ['disk 90% → attn', node({ last_heartbeat: metrics({ disk_used_bytes: 90e9 }) }), T0, policy, 'attn', ['DISK_HIGH']],
  ['disk 96% → crit', node({ last_heartbeat: metrics({ disk_used_bytes: 96e9 }) }), T0, policy, 'crit', ['DISK_HIGH']],
  ['disk total 0 ignored', node({ last_heartbeat: metrics({ disk_used_bytes: 5, disk_total_bytes: 0 }) }), T0, policy, 'ok', []],
  ['memory 95% → attn', node({ last_heartbeat: metrics({ mem_used_bytes: 7.6e9 }) }), T0, policy, 'attn', ['MEMORY_HIGH']],
  ['memory threshold configurable', node({ last_heartbeat: metrics({ mem_used_bytes: 7.6e9 }) }), T0, { ...policy, memAttnPct: 96 }, 'ok', []],
  ['scan critical finding → crit', node({ latest_scan: { findings: [{ check: 'ssh-hardening', severity: 'critical', title: 'root login' }] } }), T0, policy, 'crit', ['SCAN_CRITICAL']],
  ['scan high finding → attn', node({ latest_scan: { findings: [{ check: 'ssh-hardening', severity: 'high', title: 'x' }, { check: 'a', severity: 'low', title: 'y' }] } }), T0, policy, 'attn', ['SCAN_HIGH']],
  ['scan resolved finding ignored', node({ latest_scan: { findings: [{ check: 'x', severity: 'critical', title: 'x', status: 'resolved' }] } }), T0, policy, 'ok', []],
  ['scan-state shape (open_findings)', node({ latest_scan: { summary: { critical: 1, high: 0 }, open_findings: [{ check: 'file-integrity', severity: 'critical', title: '/etc/shadow changed' }] } }), T0, policy, 'crit', ['FILE_INTEGRITY_DRIFT']],
  ['scan summary only', node({ latest_scan: { summary: { critical: 0, high: 2 } } }), T0, policy, 'attn', ['SCAN_HIGH']],
  ['scan garbage tolerated', node({ latest_scan: { findings: [null, 3, 'x'] } }), T0, policy, 'ok', []],
  ['file integrity drift', node({ latest_scan: { findings: [{ check: 'file-integrity', severity: 'medium', title: '/etc/passwd changed' }] } }), T0, policy, 'attn', ['FILE_INTEGRITY_DRIFT']],
  ['integrity baseline info is not drift', node({ latest_scan: { findings: [{ check: 'file-integrity', severity: 'info', title: 'baseline created' }] } }), T0, policy, 'ok', []],
  ['agent version drift', node(), T0, { ...policy, expectedAgentVersion: '1.1.0' }, 'attn', ['AGENT_VERSION_DRIFT']],
  ['agent version matches', node(), T0, { ...policy, expectedAgentVersion: '1.0.0' }, 'ok', []],
  ['open high incident → attn', node({ open_incidents: [{ id: 'i1', severity: 'high', title: 'slow' }] }), T0, policy, 'attn', ['OPEN_INCIDENT']],
  ['open critical incident → crit', node({ open_incidents: [{ id: 'i1', severity: 'low', title: 'a' }, { id: 'i2', severity: 'critical', title: 'b' }] }), T0, policy, 'crit', ['OPEN_INCIDENT']],
  ['several reasons, worst wins', node({ last_heartbeat: heartbeat({ cloudflare_ok: false, metrics: { ...heartbeat().metrics, disk_used_bytes: 99e9 } }) }), T0 + 61_000, policy, 'crit', ['STALE', 'CLOUDFLARE_DOWN', 'DISK_HIGH']],
  ['pending node is not assessed', node({ enrollment: 'pending', last_seen: undefined }), T0 + 1e9, policy, 'ok', []],
];

describe('assessNode', () => {
  it.each(rows)('%s', (_name, n, nowMs, pol, status, codes) => {
    const a = assessNode(n, nowMs, pol);
    expect(a.status).toBe(status);
    expect(a.reasons.map((r) => r.code)).toEqual(codes);
    for (const r of a.reasons) expect(r.message.length).toBeGreaterThan(0);
  });

  it('names failing services in the message', () => {
    const a = assessNode(node({ last_heartbeat: heartbeat({ services_ok: false, services: { 'nginx.service': 'failed' } }) }), T0, policy);
    expect(a.reasons[0]!.message).toBe('services not OK: nginx.service failed');
  });
});

describe('nodeStatus delegates to the attention model', () => {
  it.each([
    ['ok', node(), T0],
    ['attn', node({ last_heartbeat: heartbeat({ cloudflare_ok: false }) }), T0],
    ['crit', node({ open_incidents: [{ id: 'i', severity: 'critical', title: 't' }] }), T0],
    ['attn', node(), T0 + 61_000],
    ['offline', node(), T0 + 151_000],
    ['offline', node({ last_seen: undefined }), T0],
    ['pending', node({ enrollment: 'pending' }), T0],
  ] as const)('%s', (expected, n, nowMs) => expect(nodeStatus(n, nowMs, policy)).toBe(expected));

  it('keeps lateAfter as an alias', () => {
    expect(nodeStatus(node(), T0 + 61_000, { ...policy, lateAfter: 3 })).toBe('ok');
  });
});

describe('applyAttentionEvent', () => {
  it('records the journaled status; ignores malformed bodies', () => {
    const state = createFleetState();
    expect(journaledStatus(state, 'n1')).toBe('ok');
    applyAttentionEvent(state, { v: 1, id: 'a', seq: 1, ts: iso(T0), kind: 'attention', node_id: 'n1', author: 'system:attention', body: { status: 'crit', previous: 'ok', reasons: [] } });
    expect(journaledStatus(state, 'n1')).toBe('crit');
    applyAttentionEvent(state, { v: 1, id: 'b', seq: 2, ts: iso(T0), kind: 'attention', node_id: 'n1', author: 'x', body: { status: 'bogus' } });
    expect(state.attention.get('n1')).toMatchObject({ status: 'crit', seq: 1 });
  });
});
