/**
 * Process tests: the built CLI (`node dist/cli/main.js logs ...`) against journals in a temp dir: a real center's
 * log (test/fleet-fixture.ts) for what the output says, and generated journals of real-shaped envelopes for the
 * mechanics (filters, merging, corrupt lines, following).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../protocol/canonical-json.js';
import { journalForKind, JOURNAL_FILES, type Envelope } from '../../protocol/envelope.js';
import { summarize as summarizeFindings, type Finding } from '../../protocol/scan.js';
import { heartbeatBody } from '../../test/helpers.js';
import { generateFleetFixture, type FleetFixture } from '../../test/fleet-fixture.js';
import { readLogDir } from '../../test/journal-lines.js';
import { rebuildDist } from '../../test/process-helpers.js';

const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'dist/cli/main.js');
let entry: string;
let tmp: string;

interface Fixture {
  dir: string;
  envs: Envelope[];
  lines: string[];
}

const NODES = ['n1', 'n2', 'n3'];
const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;

/** A journal set in seq order across the four files; ts one minute apart, ending `endAgoMin` minutes ago. */
function makeFixture(name: string, count = 200, endAgoMin = 0): Fixture {
  const dir = join(tmp, name);
  rmSync(dir, { recursive: true, force: true });
  spawnSync('mkdir', ['-p', dir]);
  const start = Date.now() - (count + endAgoMin) * 60_000;
  const envs: Envelope[] = [];
  for (let seq = 1; seq <= count; seq++) {
    const node = NODES[seq % 3]!;
    const ts = new Date(start + seq * 60_000).toISOString();
    const base = { v: 1 as const, id: `e-${seq}`, seq, ts, author: `node:${node}`, node_id: node };
    let e: Envelope;
    // Bodies of the shapes the center journals (protocol/envelope-kinds.ts), so the mechanics run on real lines.
    switch (seq % 7) {
      case 0: {
        const findings: Finding[] = [{ check: 'c', severity: SEVERITIES[seq % 5]!, title: `t${seq}`, detail: '', evidence: {} }];
        e = { ...base, kind: 'scan', body: { node_id: node, started_at: ts, finished_at: ts, agent_version: '0.1.0', findings, summary: summarizeFindings(findings), trigger: 'schedule' } };
        break;
      }
      case 1:
        e = { ...base, kind: 'command', author: `node:${node}`, body: { event: 'delivered', command_id: `c${seq}`, status: 'delivered', attempt: 1 } };
        break;
      case 2: {
        const payload = { v: 1, command_id: `c${seq - 1}`, node_id: node, status: seq % 3 ? 'succeeded' : 'failed', exit_code: seq % 3 ? 0 : 1, started_at: ts, finished_at: ts, output: '', truncated: false };
        e = { ...base, kind: 'receipt', body: { payload, signature: '0'.repeat(128), key_id: '0'.repeat(16) } };
        break;
      }
      case 3: {
        const { node_id: _n, ...rest } = base;
        e = { ...rest, kind: 'incident', author: 'bot', body: { severity: SEVERITIES[seq % 5] === 'info' ? 'low' : SEVERITIES[seq % 5]!, status: 'open', title: `incident ${seq}` } };
        break;
      }
      case 4:
        e = { ...base, kind: 'note', author: 'op', body: { text: `note ${seq}` } };
        break;
      default:
        e = { ...base, kind: 'heartbeat', body: heartbeatBody(node, { timestamp: ts }) };
    }
    envs.push(e);
  }
  const byFile = new Map<string, string[]>();
  for (const e of envs) {
    const file = JOURNAL_FILES[journalForKind(e.kind)];
    byFile.set(file, [...(byFile.get(file) ?? []), canonicalJson(e)]);
  }
  for (const [file, lines] of byFile) writeFileSync(join(dir, file), lines.map((l) => `${l}\n`).join(''));
  return { dir, envs, lines: envs.map((e) => canonicalJson(e)) };
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string> = {}): RunResult {
  const r = spawnSync(process.execPath, [entry, 'logs', ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '', ...env }, maxBuffer: 1 << 28 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const outLines = (s: string): string[] => s.split('\n').filter((l) => l.length > 0);

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vaultmesh-logs-'));
  // Always rebuild so the process tests exercise the current sources (tsc emits even if others' files have type errors).
  rebuildDist();
  expect(existsSync(join(ROOT, 'dist/cli/commands/logs.js'))).toBe(true);
  expect(existsSync(MAIN)).toBe(true);
  expect(readFileSync(join(ROOT, 'dist/cli/command-table.js'), 'utf8')).toContain('./commands/logs.js');
  entry = MAIN;
}, 120_000);

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('logs view', () => {
  let fx: Fixture;
  beforeAll(() => {
    fx = makeFixture('view');
  });

  it('merges all journals in seq order and --json passes the lines through byte for byte', () => {
    const r = run(['view', '--dir', fx.dir, '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(outLines(r.stdout)).toEqual(fx.lines);
    for (const l of outLines(r.stdout)) expect(() => JSON.parse(l)).not.toThrow();
  });

  it('reads the dir from VAULTMESH_LOG_DIR', () => {
    const r = run(['view', '--json', '--limit', '3'], { VAULTMESH_LOG_DIR: fx.dir });
    expect(outLines(r.stdout)).toEqual(fx.lines.slice(0, 3));
  });

  it.each<[string, string[], (e: Envelope) => boolean]>([
    ['--kind', ['--kind', 'scan,receipt'], (e) => e.kind === 'scan' || e.kind === 'receipt'],
    ['--node', ['--node', 'n2'], (e) => e.node_id === 'n2'],
    ['--kind + --node', ['--kind', 'scan', '--node', 'n1'], (e) => e.kind === 'scan' && e.node_id === 'n1'],
    ['--min-severity', ['--min-severity', 'high'], (e) => ['high', 'critical'].includes(String((e.body.findings as Array<{ severity: string }> | undefined)?.[0]?.severity ?? e.body.severity))],
    ['--since relative', ['--since', '30m'], (e) => Date.parse(e.ts) >= Date.now() - 30 * 60_000],
  ])('filters with %s', (_name, args, pred) => {
    const r = run(['view', '--dir', fx.dir, '--json', ...args]);
    expect(r.code).toBe(0);
    const expected = fx.envs.filter(pred).map((e) => canonicalJson(e));
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(fx.envs.length);
    expect(outLines(r.stdout)).toEqual(expected);
  });

  it('filters with absolute --since/--until (since inclusive, until exclusive)', () => {
    const since = fx.envs[49]!.ts;
    const until = fx.envs[59]!.ts;
    const r = run(['view', '--dir', fx.dir, '--json', '--since', since, '--until', until]);
    expect(outLines(r.stdout).map((l) => JSON.parse(l).seq)).toEqual(Array.from({ length: 10 }, (_, i) => 50 + i));
  });

  it('stops after --limit matches', () => {
    const r = run(['view', '--dir', fx.dir, '--json', '--kind', 'heartbeat', '--limit', '4']);
    expect(outLines(r.stdout)).toEqual(fx.envs.filter((e) => e.kind === 'heartbeat').slice(0, 4).map((e) => canonicalJson(e)));
  });

  it('prints aligned human lines without colour when piped', () => {
    const r = run(['view', '--dir', fx.dir, '--kind', 'incident', '--limit', '2']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('\u001b[');
    const lines = outLines(r.stdout);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\S+Z\s+3\s+incident\s+-\s+bot\s+incident \(high\): incident 3$/);
  });

  it.each([
    [['--since', 'yesterday'], /bad --since "yesterday"/],
    [['--min-severity', 'severe'], /bad --min-severity/],
    [['--limit=-3'], /bad --limit "-3"/],
    [['--kind'], /kind/],
  ])('exits 2 on a bad filter %j with a one-line message and a hint', (args, message) => {
    const r = run(['view', '--dir', fx.dir, ...args]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const err = outLines(r.stderr);
    expect(err[0]).toMatch(message);
    expect(err.slice(1).every((l) => l.includes('hint:'))).toBe(true);
  });

  it('exits 2 on a missing dir', () => {
    const r = run(['view', '--dir', join(tmp, 'nope')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/log dir .*nope does not exist/);
    expect(r.stderr).toMatch(/hint: pass --dir/);
  });

  it('exits 2 on an unknown action', () => {
    const r = run(['frobnicate', '--dir', fx.dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown logs action "frobnicate"/);
  });

  it('stops quietly when the reader goes away (| head)', async () => {
    const big = makeFixture('big', 60_000);
    const child = spawn(process.execPath, [entry, 'logs', 'view', '--dir', big.dir, '--json']);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise<void>((res) => child.stdout.once('data', () => res()));
    child.stdout.destroy();
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    expect(code).toBe(0);
    expect(stderr).toBe('');
  });
});

describe('logs view: corrupt and torn lines', () => {
  it('exits 1 naming file:line, and goes on with --skip-corrupt', () => {
    const fx = makeFixture('corrupt', 50);
    const events = join(fx.dir, 'events.jsonl');
    const lines = readFileSync(events, 'utf8').split('\n');
    lines.splice(2, 0, '{"this is": not json');
    writeFileSync(events, lines.join('\n'));

    const r = run(['view', '--dir', fx.dir, '--json']);
    expect(r.code).toBe(1);
    expect(outLines(r.stderr)[0]).toBe(`vaultmesh logs: ${events}:3: not JSON (${jsonError('{"this is": not json')})`);
    expect(r.stderr).toMatch(/hint: rerun with --skip-corrupt/);

    const s = run(['view', '--dir', fx.dir, '--json', '--skip-corrupt']);
    expect(s.code).toBe(0);
    expect(s.stderr).toMatch(new RegExp(`warning: ${escape(events)}:3: not JSON .*\\(skipped\\)`));
    expect(outLines(s.stdout)).toEqual(fx.lines);
  });

  it('ignores a torn last line with a warning', () => {
    const fx = makeFixture('torn', 30);
    const hb = join(fx.dir, 'heartbeats.jsonl');
    appendFileSync(hb, '{"author":"node:n1","body":{"hostn');
    const r = run(['view', '--dir', fx.dir, '--json']);
    expect(r.code).toBe(0);
    expect(outLines(r.stdout)).toEqual(fx.lines);
    expect(r.stderr).toMatch(new RegExp(`warning: ${escape(hb)}:\\d+: torn last line ignored`));
  });
});

describe('logs on a real center’s log', () => {
  let real: FleetFixture;
  let envs: Envelope[];
  beforeAll(async () => {
    real = await generateFleetFixture();
    envs = readLogDir(real.logDir);
  }, 60_000);
  afterAll(() => real?.cleanup());

  it('stats --json: commands issued once each, receipts by their signed status, all matching a plain count', () => {
    const r = run(['stats', '--dir', real.logDir, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    // An independent count of the same files: one command per `issued` line, outcomes from the receipts' payloads.
    const issued = envs.filter((e) => e.kind === 'command' && e.body.event === 'issued');
    const byStatus: Record<string, number> = {};
    for (const e of envs) if (e.kind === 'receipt') byStatus[(e.body.payload as { status: string }).status] = (byStatus[(e.body.payload as { status: string }).status] ?? 0) + 1;
    expect(report.fleet.commands).toEqual({ issued: issued.length, by_status: byStatus, expired_unanswered: 1 });
    expect(report.fleet.commands).toEqual({ issued: 6, by_status: { expired: 1, failed: 1, rejected: 1, succeeded: 2 }, expired_unanswered: 1 });
    expect(report.fleet.total).toBe(envs.length);
    expect(report.fleet.heartbeats).toBe(envs.filter((e) => e.kind === 'heartbeat').length);
    expect(report.fleet.findings.scans).toBe(envs.filter((e) => e.kind === 'scan').length);
    for (const n of report.nodes) {
      const mine = envs.filter((e) => (e.node_id ?? null) === n.node_id);
      expect(n.total, String(n.node_id)).toBe(mine.length);
      expect(n.commands.issued).toBe(mine.filter((e) => e.kind === 'command' && e.body.event === 'issued').length);
    }
    expect(report.nodes.at(-1).node_id).toBeNull(); // join tokens, notes and incidents without a node
  });

  it('stats: the RECEIPTS column is ok/fail/rej/exp of the signed receipts', () => {
    const lines = outLines(run(['stats', '--dir', real.logDir]).stdout);
    expect(lines.at(-1)).toMatch(/^FLEET \(4 nodes\)\s.*\s2\/1\/1\/1$/);
    expect(lines.find((l) => l.startsWith('web-2 '))).toMatch(/\s0\/1\/1\/0$/);
  });

  it('view: receipts with action, status and reason; heartbeats with their real metrics', () => {
    const r = run(['view', '--dir', real.logDir, '--kind', 'receipt,heartbeat,command', '--node', 'web-2']);
    expect(r.code).toBe(0);
    const summaries = outLines(r.stdout).map((l) => l.split(/\s{2,}/).slice(5).join('  '));
    expect(summaries).toContain('heartbeat from web-2.example: load 0.10, mem 25%, disk 97%, up 20m 34s, services not OK (nginx.service failed)');
    expect(summaries).toContain('receipt: service-status failed (EXIT_NONZERO, exit 3, 150 ms) — nginx.service: inactive (dead)');
    expect(summaries).toContain('receipt: service-restart rejected (ACTION_NOT_ALLOWED, 150 ms) — action service-restart is not allowed on this node');
    expect(summaries).toContain('command service-restart delivered');
    for (const s of summaries) expect(s).not.toMatch(/^\{|: \{"|undefined/);
  });

  it('view --json passes a real log through byte for byte', () => {
    const r = run(['view', '--dir', real.logDir, '--json']);
    expect(outLines(r.stdout).map((l) => JSON.parse(l).seq)).toEqual(envs.map((e) => e.seq));
  });
});

describe('logs stats', () => {
  it('never writes a control character from a journal to the terminal, as a table or as JSON', () => {
    // A journal edited by someone else may hold anything: the node id here carries a screen clear and a C1 CSI.
    const dir = join(tmp, 'stats-hostile');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    const hostile = 'web\u001b[2J\u009b31m';
    const e = { v: 1, id: 'hb-1', seq: 1, ts: '2026-01-01T00:00:00.000Z', kind: 'heartbeat', node_id: hostile, author: `node:${hostile}`, body: heartbeatBody('web', {}) };
    writeFileSync(join(dir, JOURNAL_FILES.heartbeats), `${canonicalJson(e)}\n`);
    for (const args of [['stats', '--dir', dir], ['stats', '--dir', dir, '--json']]) {
      const r = run(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('web');
      expect(r.stdout).not.toMatch(/[\u001b\u009b]/);
    }
  });

  it('honours --since and prints a table with a fleet line', () => {
    const fx = makeFixture('stats2', 100);
    const r = run(['stats', '--dir', fx.dir, '--since', '10m']);
    expect(r.code).toBe(0);
    const lines = outLines(r.stdout);
    expect(lines[0]).toMatch(/^NODE\s+EVENTS/);
    expect(lines.at(-1)).toMatch(/^FLEET \(3 nodes\)\s+(9|10)\s/);
  });
});

describe('logs tail', () => {
  let child: ChildProcessWithoutNullStreams | undefined;
  afterAll(() => child?.kill('SIGKILL'));

  it('prints the last N, follows appends and a rotation within a second, stops on SIGINT', async () => {
    const fx = makeFixture('tail', 40);
    child = spawn(process.execPath, [entry, 'logs', 'tail', '--dir', fx.dir, '--json', '-n', '3']);
    const got: string[] = [];
    let buffered = '';
    let waiter: (() => void) | undefined;
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString('utf8');
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      got.push(...parts);
      waiter?.();
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const waitFor = async (n: number, ms: number): Promise<void> => {
      const deadline = Date.now() + ms;
      while (got.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out waiting for ${n} lines, got ${got.length}: ${stderr}`);
        await new Promise<void>((res) => {
          waiter = res;
          setTimeout(res, left);
        });
      }
    };

    await waitFor(3, 10_000);
    expect(got).toEqual(fx.lines.slice(-3));

    const mk = (seq: number, kind: string): string =>
      canonicalJson({ v: 1, id: `e-${seq}`, seq, ts: new Date().toISOString(), kind, node_id: 'n1', author: 'x', body: { text: `live ${seq}` } });

    // A plain append, written in two pieces: the half line must wait for its newline.
    const events = join(fx.dir, 'events.jsonl');
    const l41 = mk(41, 'note');
    appendFileSync(events, l41.slice(0, 20));
    await new Promise((r) => setTimeout(r, 100));
    let t0 = Date.now();
    appendFileSync(events, `${l41.slice(20)}\n`);
    await waitFor(4, 1000);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(got[3]).toBe(l41);

    // Rotation: the old file is renamed away (its last line written just before), a new one is created.
    const hb = join(fx.dir, 'heartbeats.jsonl');
    const l42 = mk(42, 'heartbeat');
    const l43 = mk(43, 'heartbeat');
    t0 = Date.now();
    appendFileSync(hb, `${l42}\n`);
    renameSync(hb, `${hb}.1`);
    writeFileSync(hb, `${l43}\n`);
    await waitFor(6, 1000);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(got.slice(4)).toEqual([l42, l43]);

    // The new file keeps being followed.
    const l44 = mk(44, 'heartbeat');
    appendFileSync(hb, `${l44}\n`);
    await waitFor(7, 1000);
    expect(got[6]).toBe(l44);

    child.kill('SIGINT');
    const code = await new Promise<number | null>((res) => child!.on('close', (c) => res(c)));
    expect(code).toBe(0);
    expect(stderr).toBe('');
  });

  it('rewinds after truncation and filters live lines', async () => {
    const fx = makeFixture('tail2', 20);
    const c = spawn(process.execPath, [entry, 'logs', 'tail', '--dir', fx.dir, '--json', '-n', '1', '--kind', 'note']);
    child = c;
    let out = '';
    let stderr = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (stderr += d));
    // Ready once the last past note is out: the follower is armed from then on.
    const lastNote = fx.lines[fx.envs.findLastIndex((e) => e.kind === 'note')]!;
    const ready = Date.now() + 10_000;
    while (!out.includes('\n') && Date.now() < ready) await new Promise((r) => setTimeout(r, 20));
    expect(outLines(out)).toEqual([lastNote]);
    out = '';
    const events = join(fx.dir, 'events.jsonl');
    const note = canonicalJson({ v: 1, id: 'x-100', seq: 100, ts: new Date().toISOString(), kind: 'note', author: 'op', body: { text: 'after truncate' } });
    const incident = canonicalJson({ v: 1, id: 'x-101', seq: 101, ts: new Date().toISOString(), kind: 'incident', author: 'op', body: {} });
    writeFileSync(events, `${note}\n${incident}\n`); // shorter than before: a truncation
    const deadline = Date.now() + 3000;
    while (!out.includes('after truncate') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(outLines(out)).toEqual([note]);
    expect(stderr).toMatch(/truncated; reading from the start/);
    c.kill('SIGINT');
    expect(await new Promise((res) => c.on('close', res))).toBe(0);
  });
});

function jsonError(text: string): string {
  try {
    JSON.parse(text);
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
