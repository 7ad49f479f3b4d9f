import { describe, expect, it } from 'vitest';
import { EVENT_KINDS, EVENT_LIMITS, isClientEventKind, jsonDepth, validateClientEvent } from './event-kinds.js';

const deep = (n: number): Record<string, unknown> => {
  let v: Record<string, unknown> = { text: 'x' };
  for (let i = 1; i < n; i++) v = { text: 'x', nested: v };
  return v;
};

type Row = [name: string, kind: string, body: unknown, nodeId: string | undefined, expected: 'ok' | string];

const rows: Row[] = [
  // note
  ['note: text', 'note', { text: 'disk replaced' }, undefined, 'ok'],
  ['note: extra fields allowed', 'note', { text: 'hi', link: 'https://x', source: { bot: 'b' } }, 'n1', 'ok'],
  ['note: empty text', 'note', { text: '' }, undefined, 'body.text'],
  ['note: missing text', 'note', { msg: 'hi' }, undefined, 'body.text'],
  ['note: text too long', 'note', { text: 'x'.repeat(EVENT_LIMITS.text + 1) }, undefined, 'body.text'],
  ['note: too many extra fields', 'note', Object.fromEntries([['text', 'x'], ...Array.from({ length: 40 }, (_, i) => [`k${i}`, i])]), undefined, 'body'],
  ['note: depth 8 ok', 'note', deep(8), undefined, 'ok'],
  ['note: depth 9 rejected', 'note', deep(9), undefined, 'body'],
  ['note: canonical size bound', 'note', { text: 'x', blob: 'y'.repeat(EVENT_LIMITS.bodyBytes) }, undefined, 'body'],
  ['note: body not an object', 'note', ['text'], undefined, 'body'],
  // incident
  ['incident: minimal, status defaults to open', 'incident', { title: 'db down', severity: 'critical' }, undefined, 'ok'],
  ['incident: full', 'incident', { title: 't', severity: 'low', status: 'acknowledged', description: 'd' }, 'n1', 'ok'],
  ['incident: bad severity', 'incident', { title: 't', severity: 'urgent' }, undefined, 'body.severity'],
  ['incident: bad status', 'incident', { title: 't', severity: 'high', status: 'closed' }, undefined, 'body.status'],
  ['incident: missing title', 'incident', { severity: 'high' }, undefined, 'body.title'],
  ['incident: unknown field', 'incident', { title: 't', severity: 'high', owner: 'me' }, undefined, 'body'],
  ['incident: title too long', 'incident', { title: 'x'.repeat(201), severity: 'high' }, undefined, 'body.title'],
  // ack / resolve
  ['ack: incident id', 'ack', { incident_id: 'inc-1' }, undefined, 'ok'],
  ['ack: with text', 'ack', { incident_id: 'inc-1', text: 'on it' }, undefined, 'ok'],
  ['ack: missing incident id', 'ack', { text: 'on it' }, undefined, 'body.incident_id'],
  ['ack: bad incident id', 'ack', { incident_id: '../etc/passwd' }, undefined, 'body.incident_id'],
  ['resolve: incident id', 'resolve', { incident_id: 'inc-1', text: 'fixed' }, undefined, 'ok'],
  ['resolve: unknown field', 'resolve', { incident_id: 'inc-1', severity: 'low' }, undefined, 'body'],
  // tag
  ['tag: add', 'tag', { add: ['env=prod', 'gpu'] }, 'n1', 'ok'],
  ['tag: remove', 'tag', { remove: ['gpu'] }, 'n1', 'ok'],
  ['tag: needs node', 'tag', { add: ['gpu'] }, undefined, 'node_id'],
  ['tag: empty change', 'tag', { add: [], remove: [] }, 'n1', 'body'],
  ['tag: bad label', 'tag', { add: ['has space'] }, 'n1', 'body.add.0'],
  ['tag: too many', 'tag', { add: Array.from({ length: 33 }, (_, i) => `t${i}`) }, 'n1', 'body.add'],
  ['tag: not an array', 'tag', { add: 'gpu' }, 'n1', 'body.add'],
  // reserved / unknown kinds
  ['reserved: heartbeat', 'heartbeat', {}, 'n1', 'kind'],
  ['reserved: scan', 'scan', {}, 'n1', 'kind'],
  ['reserved: command', 'command', {}, 'n1', 'kind'],
  ['reserved: enrollment', 'enrollment', { action: 'approve' }, 'n1', 'kind'],
  ['reserved: attention', 'attention', { status: 'ok' }, 'n1', 'kind'],
  ['unknown kind', 'deploy', { text: 'x' }, undefined, 'kind'],
  ['prototype key is not a kind', 'constructor', { text: 'x' }, undefined, 'kind'],
];

describe('validateClientEvent', () => {
  it.each(rows)('%s', (_name, kind, body, nodeId, expected) => {
    const r = validateClientEvent(kind, body, nodeId);
    if (expected === 'ok') {
      expect(r).toMatchObject({ ok: true, event: { kind } });
    } else {
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.issues[0]!.path).toBe(expected);
        expect(r.code).toBe(expected === 'kind' ? 'UNKNOWN_KIND' : 'VALIDATION_ERROR');
      }
    }
  });

  it('fills the incident status default', () => {
    const r = validateClientEvent('incident', { title: 't', severity: 'high' });
    expect(r.ok && r.event.body).toEqual({ title: 't', severity: 'high', status: 'open' });
  });

  it('lists the registry in its error message', () => {
    const r = validateClientEvent('heartbeat', {});
    expect(!r.ok && r.issues[0]!.message).toContain('note, incident, ack, resolve, tag');
  });

  it('registry and guard agree', () => {
    for (const k of Object.keys(EVENT_KINDS)) expect(isClientEventKind(k)).toBe(true);
    expect(isClientEventKind('toString')).toBe(false);
  });
});

describe('jsonDepth', () => {
  it.each([
    [1, 0],
    [{}, 1],
    [[], 1],
    [{ a: { b: [1] } }, 3],
    [deep(5), 5],
  ])('%j → %i', (value, depth) => expect(jsonDepth(value)).toBe(depth));
});
