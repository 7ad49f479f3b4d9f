import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrolledNode, startTestCenter, tempDir, type TestCenter } from './helpers.js';
import { CLI_BIN, runNode } from './process-helpers.js';
import { eventBodyFromFlags } from '../cli/commands/events.js';

describe('vaultmesh events post|list against a real center', () => {
  const t = tempDir();
  let c: TestCenter;
  beforeAll(async () => {
    c = await startTestCenter(t.dir);
    await enrolledNode(c, 'web-01');
  });
  afterAll(async () => {
    await c.close();
    t.cleanup();
  });
  const cli = (args: string[]) => runNode(CLI_BIN, [...args, '--cc-url', c.url, '--state-dir', join(t.dir, 'state')]);

  it('posts a note and an incident, retries idempotently, and lists them in seq order', async () => {
    const note = await cli(['events', 'post', '--kind', 'note', '--node', 'web-01', '--text', 'rebooted', '--json', '--idempotency-key', 'k-1']);
    expect(note.code, note.stderr).toBe(0);
    const n = JSON.parse(note.stdout);
    const again = JSON.parse((await cli(['events', 'post', '--kind', 'note', '--node', 'web-01', '--text', 'rebooted', '--json', '--idempotency-key', 'k-1'])).stdout);
    expect(again).toMatchObject({ duplicate: true, seq: n.seq });
    const inc = await cli(['events', 'post', '--kind', 'incident', '--node', 'web-01', '--title', 'disk', '--severity', 'high', '--json']);
    expect(inc.code, inc.stderr).toBe(0);

    const listed = await cli(['events', 'list', '--kind', 'note,incident', '--limit', '1', '--all', '--oldest-first', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const items = listed.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(items.map((e) => e.kind)).toEqual(['note', 'incident']);
    expect(items[0]).toMatchObject({ author: 'admin', node_id: 'web-01', body: { text: 'rebooted' } });
    // By default the newest come first: --limit 1 is the latest, and --all pages back in time.
    const latest = await cli(['events', 'list', '--kind', 'note,incident', '--limit', '1', '--json']);
    expect(latest.stdout.trim().split('\n').map((l) => JSON.parse(l).kind)).toEqual(['incident']);
    const back = await cli(['events', 'list', '--kind', 'note,incident', '--limit', '1', '--all', '--json']);
    expect(back.stdout.trim().split('\n').map((l) => JSON.parse(l).seq)).toEqual(items.map((e) => e.seq).reverse());
  });

  it('reports bad input: exit 2 for usage, exit 1 with the center reason for a rejected body', async () => {
    expect((await cli(['events', 'post', '--kind', 'note'])).code).toBe(2);
    const bad = await cli(['events', 'post', '--kind', 'incident', '--title', 'x', '--severity', 'apocalyptic']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/400/);
  });

  it('builds bodies from flags', () => {
    expect(eventBodyFromFlags('tag', { add: 'a,b', remove: 'c' })).toEqual({ add: ['a', 'b'], remove: ['c'] });
    expect(eventBodyFromFlags('ack', { incident: 'i1' })).toEqual({ incident_id: 'i1' });
    expect(() => eventBodyFromFlags('note', { body: '[1]' })).toThrow(/JSON object/);
  });
});
