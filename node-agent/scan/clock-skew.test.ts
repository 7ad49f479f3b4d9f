import { describe, expect, it } from 'vitest';
import { checkClockSkew } from './clock-skew.js';

const now = new Date('2026-01-01T12:00:00Z');
const at = (deltaSeconds: number) => new Date(now.getTime() + deltaSeconds * 1000);

describe('checkClockSkew', () => {
  it('is info when the center time is unknown', async () => {
    expect(await checkClockSkew({ now: () => now })).toEqual([expect.objectContaining({ severity: 'info', title: 'center time unknown' })]);
  });

  it.each([
    [0, undefined],
    [-30, undefined],
    [31, 'medium'],
    [-31, 'medium'],
    [300, 'medium'],
    [301, 'high'],
    [-3600, 'high'],
  ])('center at agent%+ds → %s', async (delta, severity) => {
    const findings = await checkClockSkew({ now: () => now, centerTime: at(delta) });
    expect(findings[0]?.severity).toBe(severity);
  });

  it('reports the sign: the agent behind the center', async () => {
    const [f] = await checkClockSkew({ now: () => now, centerTime: at(120) });
    expect(f).toMatchObject({ title: 'clock behind the center by 120 s', evidence: { skew_seconds: -120 } });
  });

  it('compares with the local time when the Date header arrived, not with now', async () => {
    // The header said 12:00:00 when our clock said 12:00:02; the scan runs ten minutes later.
    const findings = await checkClockSkew({ now: () => at(600), centerTime: now, centerTimeObservedAt: at(2) });
    expect(findings).toEqual([]);
  });
});
