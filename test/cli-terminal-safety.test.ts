/**
 * A node (and anyone who can post a note or name a join token) controls text that operators read in a terminal.
 * The real CLI (dist/cli/main.js) against a real center, with hostile facts, receipt output, a note and a join-token
 * label carrying ESC sequences (clear screen, window title, OSC 52 clipboard write) and 8-bit C1 controls: no ESC,
 * BEL or C1 character reaches stdout or stderr, in human output or in --json; the sequences are shown escaped.
 * And the center refuses such text where it has no business: in `hostname` and `agent_version`.
 */
import { describe, expect, it } from 'vitest';
import type { SignedCommand } from '../protocol/command.js';
import { signReceipt } from '../protocol/command.js';
import { cleanupAfterEach, enrolledNode, heartbeatBody, startTestCenter, tempDir, testNode } from './helpers.js';
import { CLI_BIN, assertBuilt, runNode } from './process-helpers.js';

const onCleanup = cleanupAfterEach();

const CLEAR = '\u001b[2J\u001b[H';
const TITLE = '\u001b]0;pwned\u0007';
const CLIPBOARD = '\u001b]52;c;cm0gLXJmIH4=\u0007';
const CSI8 = '\u009b31m';
const HOSTILE = `${TITLE}${CLEAR}x${CLIPBOARD}${CSI8}\u007f\r`;
// ESC, BEL, CR, DEL and the whole C1 range: what a terminal acts on (newline and tab are plain layout).
// eslint-disable-next-line no-control-regex
const ACTIVE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('the CLI never hands a terminal control sequences from the fleet', () => {
  it('nodes list/show, cmd list/show, events list, join-token list, tokens list and errors print them escaped', async () => {
    assertBuilt();
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { orchestratorTickSecs: 0, fsync: 'off' });
    onCleanup(() => c.close());
    const cli = (...args: string[]) => runNode(CLI_BIN, [...args, '--cc-url', c.url, '--token', c.adminToken]);

    // Hostile text where it is legitimately free-form: facts, receipt output, notes, labels.
    const tok = await c.api('POST', '/api/join-tokens', { uses: 1, label: `lab ${CLIPBOARD}` });
    expect(tok.status).toBe(201);
    const node = testNode(c, 'web-01');
    const enroll = await node.send('POST', '/api/agent/enroll', {
      token: tok.json.token,
      node_id: 'web-01',
      hostname: 'web-01.example',
      os_profile: 'debian',
      public_key: node.key.publicKeyHex,
      agent_version: '0.1.0',
      facts: { kernel: HOSTILE, motd: `\u0090${CSI8}` },
    });
    expect(enroll.status, JSON.stringify(enroll.json)).toBe(202);
    expect((await c.api('POST', '/api/nodes/web-01/approve')).status).toBe(200);
    expect((await node.send('POST', '/api/agent/heartbeat', heartbeatBody('web-01'))).status).toBe(200);
    expect((await c.api('POST', '/api/events', { kind: 'note', node_id: 'web-01', body: { text: `note ${HOSTILE}` } })).status).toBe(201);
    const issued = await c.api('POST', '/api/commands', { node_id: 'web-01', action: 'ping', args: {} });
    expect(issued.status).toBe(201);
    const polled = await node.send('GET', '/api/agent/commands?wait=5');
    const cmd = polled.json.commands[0] as SignedCommand;
    const at = new Date().toISOString();
    const receipt = signReceipt(
      { v: 1, command_id: cmd.payload.id, node_id: 'web-01', status: 'succeeded', exit_code: 0, started_at: at, finished_at: at, output: `line one\r\n${CLEAR}line two\t${CLIPBOARD}\n${CSI8}end`, truncated: false },
      node.key,
    );
    expect((await node.send('POST', '/api/agent/receipts', receipt)).status).toBe(200);

    const runs = {
      'nodes list': await cli('nodes', 'list'),
      'nodes show': await cli('nodes', 'show', 'web-01'),
      'nodes show --json': await cli('nodes', 'show', 'web-01', '--json'),
      'cmd list': await cli('cmd', 'list'),
      'cmd show': await cli('cmd', 'show', cmd.payload.id),
      'cmd show --json': await cli('cmd', 'show', cmd.payload.id, '--json'),
      'events list': await cli('events', 'list'),
      'events list --json': await cli('events', 'list', '--json'),
      'join-token list': await cli('join-token', 'list'),
      'tokens list': await cli('tokens', 'list'),
    };
    for (const [what, r] of Object.entries(runs)) {
      expect(r.code, `${what}: ${r.stderr}`).toBe(0);
      expect(ACTIVE.exec(r.stdout)?.[0], `${what} stdout: ${JSON.stringify(r.stdout)}`).toBeUndefined();
      expect(ACTIVE.exec(r.stderr)?.[0], `${what} stderr`).toBeUndefined();
    }
    // Shown, escaped, where they are.
    // (facts are a JSON object on their line, so JSON's own \u escapes show the controls there)
    expect(runs['nodes show'].stdout).toMatch(/^facts +\{.*\\u001b\]0;pwned\\u0007\\u001b\[2J.*\\u009b31m/m);
    expect(runs['cmd show'].stdout).toContain('line one\n\\x1b[2J\\x1b[Hline two\t\\x1b]52;c;cm0gLXJmIH4=\\x07\n\\x9b31mend\n');
    expect(runs['events list'].stdout).toMatch(/note \\x1b\]0;pwned\\x07\\x1b\[2J/);
    expect(runs['join-token list'].stdout).toContain('lab \\x1b]52;c;cm0gLXJmIH4=\\x07');
    // --json stays JSON with the same strings (C1 and DEL as \u escapes, which JSON.parse reads back).
    expect(JSON.parse(runs['nodes show --json'].stdout).facts.kernel).toBe(HOSTILE);
    expect(JSON.parse(runs['cmd show --json'].stdout).receipt.payload.output).toContain(CSI8);
    const note = runs['events list --json'].stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.kind === 'note');
    expect(note.body.text).toBe(`note ${HOSTILE}`);

    // An error that quotes what it was given.
    const bad = await cli('nodes', 'show', `web-01${CLEAR}`);
    expect(bad.code).toBe(1);
    expect(ACTIVE.exec(bad.stderr)?.[0], bad.stderr).toBeUndefined();
  });

  it('the center refuses control and format characters in hostname and agent_version', async () => {
    const t = tempDir();
    onCleanup(t.cleanup);
    const c = await startTestCenter(t.dir, { orchestratorTickSecs: 0, fsync: 'off' });
    onCleanup(() => c.close());
    const node = await enrolledNode(c, 'web-01');
    for (const [field, value] of [
      ['agent_version', '\u001b]0;x\u0007\u001b[2K1.0'],
      ['agent_version', '1.0\u009b2J'],
      ['agent_version', '1.0\u202e'],
      ['agent_version', '1.0 beta'],
      ['hostname', 'web\u009b2J'],
      ['hostname', 'web\u007f'],
      ['hostname', 'web\u200b01'],
    ] as const) {
      const r = await node.send('POST', '/api/agent/heartbeat', heartbeatBody('web-01', { [field]: value }));
      expect({ field, value, status: r.status, path: r.json.error?.details?.[0]?.path }).toEqual({ field, value, status: 400, path: field });
    }
    const newcomer = testNode(c, 'web-02');
    const tok = await c.api('POST', '/api/join-tokens', { uses: 1 });
    const enroll = await newcomer.send('POST', '/api/agent/enroll', { token: tok.json.token, node_id: 'web-02', hostname: 'web-02', os_profile: 'debian', public_key: newcomer.key.publicKeyHex, agent_version: '\u001b[2J0.1', facts: {} });
    expect(enroll.status).toBe(400);
    expect(enroll.json.error.details[0].path).toBe('agent_version');
    // Ordinary versions and hostnames still pass.
    expect((await node.send('POST', '/api/agent/heartbeat', heartbeatBody('web-01', { agent_version: '1.2.3-rc.1+build.5', hostname: 'münchen-01.example' }))).status).toBe(200);
  });
});
