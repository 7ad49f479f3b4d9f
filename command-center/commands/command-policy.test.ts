import { describe, expect, it } from 'vitest';
import { checkPolicy, loadPolicyFile, parsePolicy } from './command-policy.js';

const policy = parsePolicy({
  v: 1,
  profiles: {
    '*': { actions: ['ping', 'service-status'], units: ['*'] },
    debian: { actions: ['ping', 'service-restart', 'collect-journal'], units: ['vaultmesh-*'], restart_units: ['nginx.service'] },
  },
});

describe('checkPolicy', () => {
  it.each([
    ['default profile allows ping', 'alpine', 'ping', {}, true],
    ['default profile: any unit for status', 'alpine', 'service-status', { unit: 'x.service' }, true],
    ['default profile denies restart', 'alpine', 'service-restart', { unit: 'nginx.service' }, false],
    ['debian: restart of an allowlisted unit', 'debian', 'service-restart', { unit: 'nginx.service' }, true],
    ['debian: restart of another unit', 'debian', 'service-restart', { unit: 'sshd.service' }, false],
    ['debian: prefix pattern', 'debian', 'collect-journal', { unit: 'vaultmesh-agent.service', lines: 10 }, true],
    ['debian: outside prefix', 'debian', 'collect-journal', { unit: 'cron.service', lines: 10 }, false],
    ['debian profile replaces *, not merged', 'debian', 'service-status', { unit: 'x.service' }, false],
  ])('%s', (_n, osProfile, action, args, ok) => {
    const d = checkPolicy(policy, { osProfile, action, args });
    expect(d.ok).toBe(ok);
    if (!d.ok) expect(d.reason).toMatch(action);
  });

  it('a refusal names its rule as a code', () => {
    const bare = parsePolicy({ v: 1, profiles: { debian: { actions: ['ping'] } } });
    expect(checkPolicy(bare, { osProfile: 'rhel', action: 'ping', args: {} })).toMatchObject({ ok: false, code: 'NO_PROFILE' });
    expect(checkPolicy(policy, { osProfile: 'alpine', action: 'service-restart', args: { unit: 'nginx.service' } })).toMatchObject({ ok: false, code: 'ACTION_NOT_ALLOWED' });
    expect(checkPolicy(policy, { osProfile: 'debian', action: 'service-restart', args: { unit: 'sshd.service' } })).toMatchObject({ ok: false, code: 'UNIT_NOT_ALLOWED' });
  });

  it('without a * profile, unknown profiles are denied', () => {
    const p = parsePolicy({ v: 1, profiles: { debian: { actions: ['ping'] } } });
    expect(checkPolicy(p, { osProfile: 'rhel', action: 'ping', args: {} })).toMatchObject({ ok: false, reason: /no policy profile/ });
  });

  it('rejects invalid policy files with the path of the problem', () => {
    expect(() => parsePolicy({ v: 1, profiles: { debian: { actions: ['Bad Action'] } } })).toThrow(/profiles.debian.actions.0/);
    expect(() => parsePolicy({ v: 1, profiles: {} })).toThrow(/at least one profile/);
    expect(() => parsePolicy({ v: 2, profiles: { '*': { actions: [] } } })).toThrow();
  });

  it('the shipped default policy loads', () => {
    const p = loadPolicyFile();
    expect(checkPolicy(p, { osProfile: 'whatever', action: 'ping', args: {} }).ok).toBe(true);
    expect(checkPolicy(p, { osProfile: 'whatever', action: 'service-restart', args: { unit: 'nginx.service' } }).ok).toBe(false);
  });
});
