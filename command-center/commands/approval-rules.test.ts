import { describe, expect, it } from 'vitest';
import { decide, HOST_ADMIN_IDENTITIES, proposalLapsed, type Proposal } from './approval-rules.js';
import { LOCAL_ADMIN_NAME } from '../auth/local-admin.js';
import { ADMIN_TOKEN_NAME } from '../auth/operator-auth.js';
import { approvalsRequired, parsePolicy, DEFAULT_PROPOSAL_TTL_SECS, loadPolicyFile } from './command-policy.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
function proposal(over: Partial<Proposal> = {}): Proposal {
  return { proposed_by: 'alice', proposed_at: '2026-01-01T00:00:00.000Z', proposed_seq: 5, required: 2, ttl_secs: 300, expires_at: '2026-01-01T01:00:00.000Z', approvals: [], ...over };
}
const rec = (p: Proposal | undefined, status = 'proposed') => ({ id: 'cmd-1', status, ...(p ? { proposal: p } : {}) });

describe('approval rules', () => {
  it('the first approval of a 2-of-n proposal takes slot 1 and does not issue; the second issues in slot 2', () => {
    expect(decide(rec(proposal()), 'bob', 'approve', T0)).toEqual({ ok: true, slot: 1, issues: false });
    const one = proposal({ approvals: [{ by: 'bob', at: '2026-01-01T00:01:00.000Z', seq: 6 }] });
    expect(decide(rec(one), 'carol', 'approve', T0)).toEqual({ ok: true, slot: 2, issues: true });
    expect(decide(rec(proposal({ required: 1 })), 'bob', 'approve', T0)).toEqual({ ok: true, slot: 1, issues: true });
  });

  it('refuses self-approval and a second approval by the same operator', () => {
    expect(decide(rec(proposal()), 'alice', 'approve', T0)).toMatchObject({ ok: false, code: 'SELF_APPROVAL', status: 403 });
    const one = proposal({ approvals: [{ by: 'bob', at: '2026-01-01T00:01:00.000Z', seq: 6 }] });
    expect(decide(rec(one), 'bob', 'approve', T0)).toMatchObject({ ok: false, code: 'ALREADY_APPROVED', status: 409 });
  });

  it('the admin token and the admin socket are one operator: neither approves what the other proposed or approved', () => {
    expect([...HOST_ADMIN_IDENTITIES].sort()).toEqual([ADMIN_TOKEN_NAME, LOCAL_ADMIN_NAME].sort());
    expect(decide(rec(proposal({ proposed_by: 'admin' })), 'local-admin', 'approve', T0)).toMatchObject({ ok: false, code: 'SELF_APPROVAL', message: expect.stringContaining('one operator') });
    expect(decide(rec(proposal({ proposed_by: 'local-admin' })), 'admin', 'approve', T0)).toMatchObject({ ok: false, code: 'SELF_APPROVAL' });
    const one = proposal({ approvals: [{ by: 'local-admin', at: '2026-01-01T00:01:00.000Z', seq: 6 }] });
    expect(decide(rec(one), 'admin', 'approve', T0)).toMatchObject({ ok: false, code: 'ALREADY_APPROVED' });
    // Either of them approving someone else's proposal once is fine, and so is a token named like them.
    expect(decide(rec(proposal()), 'local-admin', 'approve', T0)).toEqual({ ok: true, slot: 1, issues: false });
    expect(decide(rec(proposal({ proposed_by: 'admin' })), 'token:admin', 'approve', T0)).toEqual({ ok: true, slot: 1, issues: false });
  });

  it('a deny is open to the proposer and to an earlier approver, and takes the next slot', () => {
    expect(decide(rec(proposal()), 'alice', 'deny', T0)).toEqual({ ok: true, slot: 1, issues: false });
    const one = proposal({ approvals: [{ by: 'bob', at: '2026-01-01T00:01:00.000Z', seq: 6 }] });
    expect(decide(rec(one), 'bob', 'deny', T0)).toEqual({ ok: true, slot: 2, issues: false });
  });

  it('expired, denied, issued and never-proposed commands refuse every decision', () => {
    const p = proposal();
    const late = Date.parse(p.expires_at);
    expect(proposalLapsed(p, late - 1)).toBe(false);
    expect(proposalLapsed(p, late)).toBe(true);
    expect(decide(rec(p), 'bob', 'approve', late)).toMatchObject({ ok: false, code: 'PROPOSAL_EXPIRED' });
    expect(decide(rec(p, 'proposal_expired'), 'bob', 'deny', T0)).toMatchObject({ ok: false, code: 'PROPOSAL_EXPIRED' });
    expect(decide(rec({ ...p, denied: { by: 'dave', at: p.proposed_at, seq: 7 } }, 'denied'), 'bob', 'approve', T0)).toMatchObject({ ok: false, code: 'PROPOSAL_CLOSED', message: expect.stringContaining('dave') });
    expect(decide(rec(p, 'queued'), 'bob', 'approve', T0)).toMatchObject({ ok: false, code: 'PROPOSAL_CLOSED', status: 409 });
    expect(decide(rec(undefined, 'succeeded'), 'bob', 'approve', T0)).toMatchObject({ ok: false, code: 'PROPOSAL_CLOSED' });
  });
});

describe('policy approvals', () => {
  const policy = parsePolicy({
    v: 1,
    profiles: {
      '*': { actions: ['ping'] },
      prod: { actions: ['ping', 'service-restart'], restart_units: ['nginx.service'], approvals: { 'service-restart': 2 } },
    },
  });

  it('reads approvals per action and profile, 0 elsewhere, and a default proposal lifetime', () => {
    expect(approvalsRequired(policy, 'prod', 'service-restart')).toBe(2);
    expect(approvalsRequired(policy, 'prod', 'ping')).toBe(0);
    expect(approvalsRequired(policy, 'alpine', 'service-restart')).toBe(0);
    expect(approvalsRequired(policy, 'prod', 'toString')).toBe(0);
    expect(policy.proposal_ttl_secs).toBe(DEFAULT_PROPOSAL_TTL_SECS);
  });

  it.each([
    ['an action the profile does not allow', { actions: ['ping'], approvals: { 'service-restart': 1 } }],
    ['zero approvals', { actions: ['ping'], approvals: { ping: 0 } }],
    ['more than 16', { actions: ['ping'], approvals: { ping: 17 } }],
    ['a fraction', { actions: ['ping'], approvals: { ping: 1.5 } }],
  ])('refuses %s', (_n, profile) => {
    expect(() => parsePolicy({ v: 1, profiles: { prod: profile } })).toThrow(/approvals/);
  });

  it('refuses a proposal lifetime under a minute', () => {
    expect(() => parsePolicy({ v: 1, proposal_ttl_secs: 5, profiles: { '*': { actions: ['ping'] } } })).toThrow(/proposal_ttl_secs/);
  });

  it('the shipped policy makes service-restart on prod wait for 2 approvals', () => {
    expect(approvalsRequired(loadPolicyFile(), 'prod', 'service-restart')).toBe(2);
    expect(approvalsRequired(loadPolicyFile(), 'debian', 'service-restart')).toBe(0);
  });
});
