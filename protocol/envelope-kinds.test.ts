import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { journalForKind, type Envelope } from './envelope.js';
import { ENVELOPE_KINDS, ENVELOPE_KIND_NAMES, isEnvelopeKind, parseEnvelope, readEnvelope } from './envelope-kinds.js';
import { EVENT_KINDS } from './event-kinds.js';
import { generateFleetFixture, type FleetFixture } from '../test/fleet-fixture.js';
import { readLogDir } from '../test/journal-lines.js';

let fx: FleetFixture;
let envs: Envelope[];
beforeAll(async () => {
  fx = await generateFleetFixture();
  envs = readLogDir(fx.logDir);
}, 60_000);
afterAll(() => fx?.cleanup());

describe('the envelope kind registry, against a log written by a real center', () => {
  it('knows every kind the center wrote, and the center wrote every kind it knows', () => {
    const written = new Set(envs.map((e) => e.kind));
    expect([...written].filter((k) => !isEnvelopeKind(k))).toEqual([]);
    expect(ENVELOPE_KIND_NAMES.filter((k) => !written.has(k))).toEqual([]);
  });

  it('every journaled body fits its kind’s schema', () => {
    const bad = envs.flatMap((e) => {
      const r = parseEnvelope(e);
      return r.ok ? [] : [{ seq: e.seq, kind: e.kind, ...r }];
    });
    expect(bad).toEqual([]);
  });

  it('every command step and receipt status the center writes is covered', () => {
    const events = new Set(envs.flatMap((e) => (e.kind === 'command' ? [String(e.body.event)] : [])));
    expect([...events].sort()).toEqual(['completed', 'delivered', 'expired', 'issued']);
    const statuses = new Set(envs.flatMap((e) => (e.kind === 'receipt' ? [String((e.body.payload as { status: string }).status)] : [])));
    expect([...statuses].sort()).toEqual(['expired', 'failed', 'rejected', 'succeeded']);
  });

  it('puts each kind in the journal journalForKind names', () => {
    for (const kind of ENVELOPE_KIND_NAMES) expect(journalForKind(kind), kind).toBe(ENVELOPE_KINDS[kind].journal);
  });

  it('includes the client-postable kinds with their schemas', () => {
    for (const [kind, spec] of Object.entries(EVENT_KINDS)) {
      expect(isEnvelopeKind(kind)).toBe(true);
      expect(ENVELOPE_KINDS[kind as keyof typeof ENVELOPE_KINDS].schema).toBe(spec.schema);
      expect(ENVELOPE_KINDS[kind as keyof typeof ENVELOPE_KINDS].writer).toBe('client');
    }
  });
});

describe('readEnvelope / parseEnvelope', () => {
  const base = { v: 1 as const, id: 'x', seq: 1, ts: '2026-01-01T00:00:00.000Z', author: 'a' };

  it('leaves kinds it does not know to the caller (forward compatibility)', () => {
    expect(readEnvelope({ ...base, kind: 'frobnication', body: { a: 1 } })).toBeUndefined();
    expect(parseEnvelope({ ...base, kind: 'frobnication', body: {} })).toEqual({ ok: false, reason: 'unknown-kind' });
  });

  it('reads a known kind without copying it (the replay path)', () => {
    const env = envs.find((e) => e.kind === 'heartbeat')!;
    expect(readEnvelope(env)).toBe(env);
  });

  it('parseEnvelope names the field that does not fit', () => {
    const r = parseEnvelope({ ...base, kind: 'receipt', body: { payload: { status: 'maybe' }, signature: 'x', key_id: 'y' } });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason === 'invalid-body' && r.issues.map((i) => i.path)).toContain('body.payload.status');
  });
});

describe('docs/EVENT_ENVELOPE.md', () => {
  it('has a row for every kind in the registry, and no row for a kind that is not', () => {
    const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'EVENT_ENVELOPE.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Every kind'), doc.indexOf('\n## ', doc.indexOf('## Every kind') + 5));
    const rows = [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
    expect(rows.sort()).toEqual([...ENVELOPE_KIND_NAMES].sort());
  });
});
