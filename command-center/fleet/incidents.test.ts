import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../protocol/envelope.js';
import { applyEnvelope, createFleetState } from './fleet-state.js';
import { listOpenIncidents } from './incidents.js';

let seq = 0;
const env = (kind: string, body: Record<string, unknown>, over: Partial<Envelope> = {}): Envelope => ({
  v: 1, id: `e${++seq}`, seq, ts: new Date(1_700_000_000_000 + seq * 1000).toISOString(), kind, author: 'admin', body, ...over,
});

function withNode() {
  const state = createFleetState({ maxOpenIncidents: 3 });
  applyEnvelope(state, env('enrollment', { action: 'request', hostname: 'h', os_profile: 'u', public_key: 'k', key_id: 'k', agent_version: '1', auto_approved: true }, { node_id: 'n1' }));
  return state;
}

describe('incident, ack, resolve', () => {
  it('tracks open incidents with acks and drops them on resolve', () => {
    const state = withNode();
    const inc = env('incident', { title: 'db down', severity: 'high', status: 'open' }, { node_id: 'n1', on_behalf_of: 'pagerbot' });
    applyEnvelope(state, inc);
    expect(state.nodes.get('n1')!.open_incidents).toEqual([{ id: inc.id, severity: 'high', title: 'db down' }]);
    applyEnvelope(state, env('ack', { incident_id: inc.id, text: 'looking' }, { author: 'alice' }));
    expect(listOpenIncidents(state)[0]).toMatchObject({ id: inc.id, status: 'acknowledged', on_behalf_of: 'pagerbot', acks: [{ author: 'alice', text: 'looking' }] });
    applyEnvelope(state, env('resolve', { incident_id: inc.id }));
    applyEnvelope(state, env('resolve', { incident_id: inc.id })); // a second resolve changes nothing
    expect(state.incidents.open.size).toBe(0);
    expect(state.incidents.resolved).toBe(1);
    expect(state.nodes.get('n1')!.open_incidents).toEqual([]);
  });

  it('ignores acks for unknown incidents and counts incidents created resolved', () => {
    const state = withNode();
    applyEnvelope(state, env('ack', { incident_id: 'nope' }));
    applyEnvelope(state, env('incident', { title: 't', severity: 'low', status: 'resolved' }));
    expect(state.incidents.open.size).toBe(0);
    expect(state.incidents.resolved).toBe(1);
  });

  it('bounds open incidents, evicting the oldest', () => {
    const state = withNode();
    for (let i = 0; i < 5; i++) applyEnvelope(state, env('incident', { title: `t${i}`, severity: 'low', status: 'open' }, { node_id: 'n1' }));
    expect(state.incidents.open.size).toBe(3);
    expect(state.incidents.evicted).toBe(2);
    expect(listOpenIncidents(state).map((i) => i.title)).toEqual(['t4', 't3', 't2']);
    expect(state.nodes.get('n1')!.open_incidents!.map((r) => r.title)).toEqual(['t2', 't3', 't4']);
  });

  it('keeps open incidents across a re-enrollment request', () => {
    const state = withNode();
    applyEnvelope(state, env('incident', { title: 't', severity: 'critical', status: 'open' }, { node_id: 'n1' }));
    applyEnvelope(state, env('enrollment', { action: 'request', hostname: 'h', os_profile: 'u', public_key: 'k2', key_id: 'k2', agent_version: '1' }, { node_id: 'n1' }));
    expect(state.nodes.get('n1')!.open_incidents).toHaveLength(1);
  });
});

describe('tag', () => {
  it('removes then adds, sorted, per node; unknown nodes ignored', () => {
    const state = withNode();
    applyEnvelope(state, env('tag', { add: ['zone=b', 'gpu'] }, { node_id: 'n1' }));
    applyEnvelope(state, env('tag', { add: ['env=prod'], remove: ['gpu'] }, { node_id: 'n1' }));
    applyEnvelope(state, env('tag', { add: ['x'] }, { node_id: 'ghost' }));
    expect(state.nodes.get('n1')!.tags).toEqual(['env=prod', 'zone=b']);
    expect(state.nodes.has('ghost')).toBe(false);
  });
});
