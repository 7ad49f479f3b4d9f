import { describe, expect, test } from 'vitest';
import type { Envelope } from '../../protocol/envelope.js';
import { applyEnvelope, createFleetState } from '../fleet/fleet-state.js';
import { ConsoleLive } from './live.js';
import type { ConsoleSource } from './panels.js';
import { createConsoleRenderer } from './render.js';
import { NO_FILTER } from './view-model.js';

const T0 = Date.parse('2025-01-01T12:00:00Z');
const renderer = createConsoleRenderer();

function harness() {
  const state = createFleetState();
  const log: Envelope[] = [];
  let now = T0;
  const src: ConsoleSource = {
    state,
    bus: { recent: (after, limit) => log.filter((e) => e.seq > after).slice(0, limit) },
    statusPolicy: { heartbeatIntervalMs: 30_000 },
    startedAt: new Date(T0),
    now: () => new Date(now),
  };
  const commit = (kind: string, node_id: string | undefined, body: Record<string, unknown>) => {
    const e: Envelope = { v: 1, id: `e${log.length + 1}`, seq: log.length + 1, ts: new Date(now).toISOString(), kind, author: 'admin', body, ...(node_id ? { node_id } : {}) };
    log.push(e);
    applyEnvelope(state, e);
    return e;
  };
  const enroll = (id: string) => commit('enrollment', id, { action: 'request', hostname: `${id}.example`, os_profile: 'debian', public_key: 'ab'.repeat(32), key_id: 'k', agent_version: '1', auto_approved: true });
  const heartbeat = (id: string) =>
    commit('heartbeat', id, {
      node_id: id, hostname: `${id}.example`, os_profile: 'debian', cloudflare_ok: true, services_ok: true, vaultmesh_root: '/', timestamp: new Date(now).toISOString(), agent_version: '1',
      metrics: { load: [0.1, 0.1, 0.1], mem_used_bytes: 1, mem_total_bytes: 2, disk_used_bytes: 1, disk_total_bytes: 2, uptime_s: 1 },
    });
  return { src, commit, enroll, heartbeat, tick: (ms: number) => (now += ms), get now() { return now; } };
}

const count = (html: string, re: RegExp) => (html.match(re) ?? []).length;

describe('ConsoleLive', () => {
  test('full state replaces every panel wholesale', () => {
    const h = harness();
    h.enroll('a');
    h.heartbeat('a');
    const live = new ConsoleLive(h.src, renderer, { filter: NO_FILTER, canApprove: true, csrf: 't' });
    const html = live.full();
    for (const id of ['mission-bar', 'pending', 'node-list', 'node-detail', 'attention', 'findings', 'feed']) {
      expect(html).toMatch(new RegExp(`id="${id}"[^>]*hx-swap-oob="true"`));
    }
    expect(count(html, /id="node-a"/g)).toBe(1);
    expect(live.flush()).toBe(''); // nothing changed, and the status scan is not due yet
  });

  test('a new node joins the list at once (the list and pager are re-sent), then is patched in place; heartbeats coalesce with glow', () => {
    const h = harness();
    const live = new ConsoleLive(h.src, renderer, { filter: NO_FILTER, canApprove: true, csrf: 't' });
    expect(live.full()).toContain('id="node-list-empty"');
    live.note(h.enroll('a'));
    let out = live.flush();
    expect(out).toMatch(/<ul id="node-list"[^>]*hx-swap-oob="true"/);
    expect(out).toMatch(/<nav id="node-pager"[^>]*hx-swap-oob="true"[^]*1–1 of 1/);
    expect(out).not.toContain('node-list-empty');
    expect(count(out, /id="node-a"/g)).toBe(1);
    expect(out).toContain('hx-swap-oob="afterbegin:#feed"');

    for (let i = 0; i < 5; i++) live.note(h.heartbeat('a'));
    out = live.flush();
    expect(count(out, /id="node-a"/g)).toBe(1);
    expect(out).toMatch(/<li id="node-a" class="row s-ok glow"[^>]*hx-swap-oob="true"/);
    expect(out).not.toContain('id="node-list"');
    expect(out).not.toContain('#feed'); // heartbeats stay out of the feed
  });

  test('a row that leaves the filter leaves the list at the next scan, and comes back', () => {
    const h = harness();
    h.enroll('a');
    h.heartbeat('a');
    const live = new ConsoleLive(h.src, renderer, { filter: { q: '', profile: '', status: 'ok' }, canApprove: true, csrf: 't' });
    live.full();
    expect(live.shownRows().has('a')).toBe(true);
    h.tick(5 * 60_000);
    let out = live.flush();
    expect(out).toMatch(/<ul id="node-list"[^>]*hx-swap-oob="true"/);
    expect(out).not.toContain('id="node-a"');
    expect(out).toContain('No node matches this filter.');
    expect(live.shownRows().has('a')).toBe(false);
    live.note(h.heartbeat('a'));
    h.tick(1000);
    out = live.flush();
    expect(count(out, /<li id="node-a"/g)).toBe(1);
    expect(live.shownRows().has('a')).toBe(true);
  });

  test('only the shown page is rendered and patched: a heartbeat from a node on another page sends nothing', () => {
    const h = harness();
    const ids = Array.from({ length: 30 }, (_, i) => `n${String(i).padStart(2, '0')}`);
    for (const id of ids) h.enroll(id);
    for (const id of ids) h.heartbeat(id);
    const live = new ConsoleLive(h.src, renderer, { filter: { ...NO_FILTER, sort: 'name', size: 25, page: 1 }, canApprove: true, csrf: 't' });
    const html = live.full();
    expect(count(html, /<li id="node-n\d+"/g)).toBe(25);
    expect(html).toContain('1–25 of 30');
    expect(html).not.toContain('id="node-n29"');
    expect([...live.shownRows().keys()]).toEqual(ids.slice(0, 25));
    h.tick(100);
    live.note(h.heartbeat('n29')); // page 2
    expect(live.flush()).toBe('');
    live.note(h.heartbeat('n03')); // page 1
    const out = live.flush();
    expect(out).toMatch(/<li id="node-n03" class="row s-ok glow"[^>]*hx-swap-oob="true"/);
    expect(count(out, /<li id="node-/g)).toBe(1);

    const page2 = new ConsoleLive(h.src, renderer, { filter: { ...NO_FILTER, sort: 'name', size: 25, page: 2 }, canApprove: true, csrf: 't' });
    const p2 = page2.full();
    expect(count(p2, /<li id="node-n\d+"/g)).toBe(5);
    expect(p2).toContain('26–30 of 30');
    page2.note(h.heartbeat('n03'));
    expect(page2.flush()).toBe('');
  });

  test('sorted by last seen, the page follows heartbeats at the scan cadence, not per envelope', () => {
    const h = harness();
    for (const id of ['a', 'b', 'c']) h.enroll(id);
    for (const id of ['a', 'b', 'c']) {
      h.tick(10);
      h.heartbeat(id);
    }
    const live = new ConsoleLive(h.src, renderer, { filter: { ...NO_FILTER, sort: 'last_seen', size: 25 }, canApprove: true, csrf: 't' });
    live.full();
    expect([...live.shownRows().keys()]).toEqual(['c', 'b', 'a']);
    h.tick(10);
    live.note(h.heartbeat('a'));
    expect(count(live.flush(), /<li id="node-a"/g)).toBe(1); // patched in place first
    expect([...live.shownRows().keys()]).toEqual(['c', 'b', 'a']);
    h.tick(1000);
    const out = live.flush();
    expect(out).toMatch(/<ul id="node-list"[^>]*hx-swap-oob="true"/);
    expect([...live.shownRows().keys()]).toEqual(['a', 'c', 'b']);
  });

  test('the feed never repeats a seq and keeps at most 50 items', () => {
    const h = harness();
    const live = new ConsoleLive(h.src, renderer, { filter: NO_FILTER, canApprove: true, csrf: 't' });
    live.full();
    const notes = Array.from({ length: 60 }, (_, i) => h.commit('note', undefined, { text: `n${i}` }));
    for (const e of notes) live.note(e);
    const out = live.flush();
    expect(count(out, /<li id="ev-\d+" class="k-note"/g)).toBe(50);
    live.note(notes[59]!);
    expect(live.flush()).not.toContain('#feed');
  });

  test('begin: the first state is made over turns; a row whose heartbeat came meanwhile is sent again at the next flush', async () => {
    const h = harness();
    for (const id of ['a', 'b']) {
      h.enroll(id);
      h.heartbeat(id);
    }
    h.tick(10 * 60_000); // both silent for ten minutes
    const live = new ConsoleLive(h.src, renderer, { filter: NO_FILTER, canApprove: true, csrf: 't' });
    let turns = 0;
    const html = await live.begin('full', async () => {
      if (turns++ === 0) live.note(h.heartbeat('a')); // committed after the snapshot's status pass
    });
    expect(turns).toBeGreaterThan(0);
    expect(html).toMatch(/id="mission-bar"[^>]*hx-swap-oob="true"/);
    expect(html).toMatch(/<li id="node-a" class="row s-(?!ok)/); // as of the snapshot
    const out = live.flush();
    expect(out).toMatch(/<li id="node-a" class="row s-ok"[^>]*hx-swap-oob="true"/);
    expect(out).not.toContain('id="node-b"');
    expect(live.flush()).toBe('');
  });

  test('begin with a page to adopt sends nothing, and patches only what changed since', async () => {
    const h = harness();
    h.enroll('a');
    h.heartbeat('a');
    const live = new ConsoleLive(h.src, renderer, { filter: NO_FILTER, canApprove: true, csrf: 't' });
    expect(await live.begin({ adoptAtMs: h.now }, async () => {})).toBe('');
    expect(live.shownRows().get('a')).toBe('ok');
    expect(live.flush()).toBe('');
  });

  test('a scan updates the ledger root in the bar, the fleet findings and the selected node\'s latest scan', () => {
    const h = harness();
    h.enroll('a');
    h.heartbeat('a');
    let root = { tree_size: 0, root_hash: '0'.repeat(64) };
    h.src.ledgers = { scans: { root: () => root } };
    const live = new ConsoleLive(h.src, renderer, { filter: NO_FILTER, selected: 'a', canApprove: true, csrf: 't' });
    expect(live.full()).toContain('>000000000000</code>');
    const summary = { critical: 1, high: 0, medium: 0, low: 0, info: 0, checks_run: 4, checks_failed: 0 };
    const finding = { check: 'ssh-root', severity: 'critical', title: 'root login over ssh', detail: '', evidence: {} };
    live.note(h.commit('scan', 'a', { trigger: 'command', started_at: new Date(h.now).toISOString(), finished_at: new Date(h.now).toISOString(), summary, findings: [finding] }));
    root = { tree_size: 1, root_hash: 'fe'.repeat(32) };
    const out = live.flush();
    expect(out).toMatch(/id="mission-bar"[^]*>fefefefefefe<\/code> <small>#1<\/small>/);
    expect(out).toMatch(/id="findings"[^]*CRITICAL<\/span> <strong>1<\/strong>/);
    expect(out).toMatch(/id="node-detail"[^]*1 critical · 0 high[^]*root login over ssh/);
  });
});
