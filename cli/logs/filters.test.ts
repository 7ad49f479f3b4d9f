import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../protocol/envelope.js';
import { isVaultMeshError } from '../../protocol/errors.js';
import { hintOf, journalsForFilter, matchesFilter, parseFilter, parseTimeBound } from './filters.js';

const NOW = Date.parse('2026-11-20T12:00:00Z');

const env = (over: Partial<Envelope>): Envelope => ({
  v: 1,
  id: 'e1',
  seq: 1,
  ts: '2026-11-20T11:00:00.000Z',
  kind: 'note',
  author: 'op',
  body: {},
  ...over,
});

describe('parseTimeBound', () => {
  it.each([
    ['30s', NOW - 30_000],
    ['30m', NOW - 30 * 60_000],
    ['2h', NOW - 2 * 3_600_000],
    ['7d', NOW - 7 * 86_400_000],
    ['1w', NOW - 7 * 86_400_000],
    ['2026-11-20', Date.parse('2026-11-20T00:00:00Z')],
    ['2026-11-20T10:00Z', Date.parse('2026-11-20T10:00:00Z')],
    ['2026-11-20t10:00z', Date.parse('2026-11-20T10:00:00Z')],
    ['2026-11-20T10:00:30.250Z', Date.parse('2026-11-20T10:00:30.250Z')],
    ['2026-11-20T12:00:00+02:00', Date.parse('2026-11-20T10:00:00Z')],
  ])('%s', (input, expected) => {
    expect(parseTimeBound(input, NOW)).toBe(expected);
  });

  it.each(['yesterday', '2h30m', '-2h', '2026-11-20T10:00', '2026-13-45', '2026-11-20 10:00Z', '', '10'])('rejects %j', (input) => {
    expect(parseTimeBound(input, NOW)).toBeUndefined();
  });
});

describe('parseFilter', () => {
  it('parses every flag', async () => {
    const f = await parseFilter({ kind: 'scan, incident', node: 'web-01', since: '2h', until: '2026-11-20T11:30Z', minSeverity: 'HIGH', limit: '5' }, NOW);
    expect([...f.kinds!]).toEqual(['scan', 'incident']);
    expect(f.node).toBe('web-01');
    expect(f.since).toBe(NOW - 7_200_000);
    expect(f.until).toBe(Date.parse('2026-11-20T11:30:00Z'));
    expect(f.minSeverity).toBe('high');
    expect(f.limit).toBe(5);
  });

  it('accepts numbers as cac hands them over', async () => {
    expect(await parseFilter({ node: 42, limit: 7 }, NOW)).toEqual({ node: '42', limit: 7 });
  });

  it('takes the last of repeated flags', async () => {
    expect((await parseFilter({ node: ['a', 'b'] }, NOW)).node).toBe('b');
  });

  it('returns an empty filter without flags', async () => {
    expect(await parseFilter({}, NOW)).toEqual({});
  });

  it.each([
    [{ kind: true }, /--kind needs a value/],
    [{ kind: 'Scan' }, /bad --kind "Scan"/],
    [{ kind: ',' }, /bad --kind/],
    [{ node: '../etc' }, /bad --node/],
    [{ since: 'yesterday' }, /bad --since "yesterday"/],
    [{ until: '2026-11-20T10:00' }, /bad --until/],
    [{ since: '1h', until: '2h' }, /--since must be earlier than --until/],
    [{ minSeverity: 'severe' }, /bad --min-severity "severe"/],
    [{ limit: '0' }, /bad --limit "0"/],
    [{ limit: '1.5' }, /bad --limit/],
    [{ limit: 'ten' }, /bad --limit/],
  ])('rejects %j with USAGE and a hint', async (raw, message) => {
    try {
      await parseFilter(raw, NOW);
      expect.unreachable();
    } catch (err) {
      expect(isVaultMeshError(err) && err.code).toBe('USAGE');
      expect((err as Error).message).toMatch(message);
      expect(hintOf(err as never)).toBeTruthy();
    }
  });
});

describe('matchesFilter', () => {
  const scan = (severities: string[]): Envelope =>
    env({ kind: 'scan', node_id: 'n1', body: { findings: severities.map((severity) => ({ check: 'c', severity, title: 't' })), summary: 's' } });

  it('filters by kind and node', async () => {
    const f = await parseFilter({ kind: 'scan', node: 'n1' }, NOW);
    expect(matchesFilter(scan([]), f)).toBe(true);
    expect(matchesFilter({ ...scan([]), node_id: 'n2' }, f)).toBe(false);
    expect(matchesFilter(env({ node_id: 'n1' }), f)).toBe(false);
    expect(matchesFilter(env({}), await parseFilter({ node: 'n1' }, NOW))).toBe(false);
  });

  it('uses an inclusive since and an exclusive until', async () => {
    const f = await parseFilter({ since: '2026-11-20T11:00Z', until: '2026-11-20T11:30Z' }, NOW);
    expect(matchesFilter(env({ ts: '2026-11-20T11:00:00Z' }), f)).toBe(true);
    expect(matchesFilter(env({ ts: '2026-11-20T10:59:59.999Z' }), f)).toBe(false);
    expect(matchesFilter(env({ ts: '2026-11-20T11:29:59Z' }), f)).toBe(true);
    expect(matchesFilter(env({ ts: '2026-11-20T11:30:00Z' }), f)).toBe(false);
    expect(matchesFilter(env({ ts: 'garbage' }), f)).toBe(false);
  });

  it('keeps scans with a finding at or above --min-severity and incidents by body.severity', async () => {
    const f = await parseFilter({ minSeverity: 'high' }, NOW);
    expect(matchesFilter(scan(['low', 'high']), f)).toBe(true);
    expect(matchesFilter(scan(['critical']), f)).toBe(true);
    expect(matchesFilter(scan(['low', 'medium', 'info']), f)).toBe(false);
    expect(matchesFilter(scan([]), f)).toBe(false);
    expect(matchesFilter(env({ kind: 'incident', body: { severity: 'critical' } }), f)).toBe(true);
    expect(matchesFilter(env({ kind: 'incident', body: { severity: 'medium' } }), f)).toBe(false);
    expect(matchesFilter(env({ kind: 'heartbeat', body: {} }), f)).toBe(false);
    // Unknown shapes never crash and never match.
    expect(matchesFilter(env({ kind: 'scan', body: { findings: [null, 3, { severity: 9 }] } }), f)).toBe(false);
  });

  it('narrows the journals to read from the kinds', async () => {
    expect(journalsForFilter({})).toBeUndefined();
    expect([...journalsForFilter(await parseFilter({ kind: 'scan' }, NOW))!]).toEqual(['scans']);
    expect([...journalsForFilter(await parseFilter({ kind: 'receipt,incident,note' }, NOW))!].sort()).toEqual(['commands', 'events']);
  });
});
