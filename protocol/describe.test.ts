import { afterAll, beforeAll, describe as group, expect, it } from 'vitest';
import type { Envelope } from './envelope.js';
import { describe, outputSummary, runDuration, shortDuration } from './describe.js';
import { generateFleetFixture, type FleetFixture } from '../test/fleet-fixture.js';
import { readLogDir } from '../test/journal-lines.js';

let fx: FleetFixture;
let envs: Envelope[];
beforeAll(async () => {
  fx = await generateFleetFixture();
  envs = readLogDir(fx.logDir);
}, 60_000);
afterAll(() => fx?.cleanup());

const actionOf = (id: string) => fx.commands.find((c) => c.id === id)?.action;

group('describe, on a log written by a real center', () => {
  it('describes every line by its kind, never as raw JSON', () => {
    for (const e of envs) {
      const text = describe(e, { actionOf });
      expect(text, `seq ${e.seq} ${e.kind}`).not.toMatch(/^[a-z_]+: \{/);
      expect(text).not.toContain('undefined');
      expect(text).not.toMatch(/\n/);
    }
  });

  it('gives receipts their action, status, reason and exit code', () => {
    const receipts = envs.filter((e) => e.kind === 'receipt').map((e) => describe(e, { actionOf }));
    expect(receipts).toEqual([
      'receipt: ping succeeded (exit 0, 150 ms) — pong=true node_id=web-1',
      'receipt: service-status failed (EXIT_NONZERO, exit 3, 150 ms) — nginx.service: inactive (dead)',
      'receipt: service-restart rejected (ACTION_NOT_ALLOWED, 150 ms) — action service-restart is not allowed on this node',
      'receipt: ping expired (EXPIRED, 150 ms) — command expired before it could run',
      'receipt: sovereign-scan succeeded (exit 0, 150 ms) — findings=1',
    ]);
    // Without the lookup, the command id stands in for the action.
    const first = envs.find((e) => e.kind === 'receipt')!;
    expect(describe(first)).toBe(`receipt: ${fx.commands[0]!.id} succeeded (exit 0, 150 ms) — pong=true node_id=web-1`);
  });

  it('summarises output without cutting it mid-key, and gives long runs a duration', () => {
    expect(outputSummary('{"a":"' + 'x'.repeat(40) + '","b":"' + 'y'.repeat(40) + '","c":1}')).toBe(`a=${'x'.repeat(40)} …`);
    expect(outputSummary('{"list":[1,2,3],"obj":{"k":1},"n":null}')).toBe('list=[3] obj={…} n=null');
    expect(outputSummary('{not json')).toBe('{not json');
    expect(outputSummary('first line\nsecond')).toBe('first line');
    expect(outputSummary('word '.repeat(30))).toMatch(/^(word ){15}word …$|^(word ){14,15}word …$/);
    expect(outputSummary('word '.repeat(30)).length).toBeLessThanOrEqual(82);
    expect(runDuration('2025-01-01T00:00:00Z', '2025-01-01T00:00:02.500Z')).toBe('2.5 s');
    expect(runDuration('2025-01-01T00:00:00Z', '2025-01-01T00:03:00Z')).toBe('3m 0s');
    expect(runDuration('2025-01-01T00:00:01Z', '2025-01-01T00:00:00Z')).toBe('');
    expect(runDuration(undefined, '2025-01-01T00:00:00Z')).toBe('');
  });

  it('gives heartbeats the metrics agents really send', () => {
    const web2 = envs.filter((e) => e.kind === 'heartbeat' && e.node_id === 'web-2').map((e) => describe(e));
    expect(web2[0]).toBe('heartbeat from web-2.example: load 0.10, mem 25%, disk 50%, up 20m 34s');
    expect(web2.at(-1)).toBe('heartbeat from web-2.example: load 0.10, mem 25%, disk 97%, up 20m 34s, services not OK (nginx.service failed)');
  });

  it('follows a command through its steps', () => {
    const steps = envs.filter((e) => e.kind === 'command' && e.body.command_id === fx.commands[5]!.id).map((e) => describe(e, { actionOf }));
    expect(steps).toEqual([
      expect.stringMatching(/^command collect-journal \(lines=20 unit=ssh\.service\) issued by admin, expires \S+Z$/),
      'command collect-journal delivered',
      'command collect-journal expired without a receipt',
    ]);
  });

  it('describes scans, incidents, acks, tags, tokens and attention', () => {
    const text = envs.map((e) => describe(e));
    expect(text).toContain('scan (schedule): 2 findings (1 critical, 1 medium); worst: no firewall rules loaded');
    expect(text).toContain('scan (schedule): no findings');
    expect(text).toContain('incident (high): disk nearly full');
    expect(text).toContainEqual(expect.stringMatching(/^incident \S+ acknowledged: cleaning up logs$/));
    expect(text).toContain('tags +env=prod +tier=edge +canary');
    expect(text).toContainEqual(expect.stringMatching(/^API token pagerbot \([0-9a-f]{12}\) created with events:read, events:write, expires /));
    expect(text).toContain('attention OK → CRIT: disk 97.0% used (critical at 95%)');
    expect(text).toContain('enrollment rejected by admin');
  });

  it('describes outages: offline with the last heartbeat, rejoin with the gap and the delivered backlog', () => {
    const lastOf = (node: string, before: number) => envs.filter((e) => e.kind === 'heartbeat' && e.node_id === node && e.seq < before).at(-1)!;
    const offline = envs.filter((e) => e.kind === 'offline');
    expect(offline.map((e) => e.node_id).sort()).toEqual(['web-1', 'web-2']);
    for (const e of offline) {
      const last = lastOf(e.node_id!, e.seq);
      expect(describe(e)).toMatch(new RegExp(`^offline — last heartbeat ${last.ts} \\(seq ${last.seq}\\), silent for \\dm \\d+s$`));
    }
    const rejoin = envs.filter((e) => e.kind === 'rejoin');
    expect(rejoin.map((e) => e.node_id)).toEqual(['web-1']);
    const b = rejoin[0]!.body as { gap_s: number; first_heartbeat_seq: number };
    const first = envs.find((e) => e.seq === b.first_heartbeat_seq)!;
    expect(b.gap_s).toBe((Date.parse(first.ts) - Date.parse(lastOf('web-1', first.seq).ts)) / 1000);
    // Its last heartbeat was 30 s + the 131 s expiry wait + the 150 s silence (and the real time the fixture took) before.
    expect(b.gap_s).toBeGreaterThanOrEqual(311);
    expect(describe(rejoin[0]!)).toBe(`rejoined after ${shortDuration(b.gap_s)}, 3 buffered entries delivered`);
  });
});

group('describe, on lines that do not fit', () => {
  const base = { v: 1 as const, id: 'x', seq: 1, ts: '2026-01-01T00:00:00.000Z', author: 'a' };
  it.each<[string, Envelope, string]>([
    ['an unknown kind', { ...base, kind: 'frobnication', body: { a: 1 } }, 'frobnication: {"a":1}'],
    ['a heartbeat without metrics', { ...base, kind: 'heartbeat', body: { hostname: 'h' } }, 'heartbeat: {"hostname":"h"}'],
    ['a receipt of another shape', { ...base, kind: 'receipt', body: { command_id: 'c1', status: 'failed' } }, 'receipt: {"command_id":"c1","status":"failed"}'],
    ['a command step this version does not know', { ...base, kind: 'command', body: { event: 'paused', command_id: 'c1' } }, 'command: {"event":"paused","command_id":"c1"}'],
    ['an empty body', { ...base, kind: 'note', body: {} }, 'note'],
  ])('%s is shown as compact JSON', (_name, env, text) => expect(describe(env)).toBe(text));

  it('folds whitespace but leaves control characters to the caller', () => {
    expect(describe({ ...base, kind: 'note', body: { text: 'a\n\tb\u001b[2J' } })).toBe('note: a b\u001b[2J');
  });
});
