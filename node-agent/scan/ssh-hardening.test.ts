import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Finding } from '../../protocol/scan.js';
import { checkSshHardening, splitDirective } from './ssh-hardening.js';

let etc: string;
beforeEach(() => {
  etc = mkdtempSync(join(tmpdir(), 'vm-etc-'));
  mkdirSync(join(etc, 'ssh', 'sshd_config.d'), { recursive: true });
});
afterEach(() => rmSync(etc, { recursive: true, force: true }));

const write = (rel: string, text: string) => writeFileSync(join(etc, 'ssh', rel), text);
const brief = (fs: Finding[]) => fs.map((f) => `${f.severity} ${f.evidence.keyword ?? ''}=${f.evidence.value ?? ''} @${String(f.evidence.source ?? '').replace(etc, '/etc')}`);

// Debian 12's stock sshd_config, abridged: Include first, so drop-ins win.
const DEBIAN = `# This is the sshd server system-wide configuration file.
Include /etc/ssh/sshd_config.d/*.conf

#PermitRootLogin prohibit-password
#PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding yes
Subsystem sftp /usr/lib/openssh/sftp-server
`;

describe('splitDirective', () => {
  it.each([
    ['PermitRootLogin no', { keyword: 'permitrootlogin', value: 'no' }],
    ['  passwordauthentication=yes', { keyword: 'passwordauthentication', value: 'yes' }],
    ['PasswordAuthentication = no # hardened', { keyword: 'passwordauthentication', value: 'no' }],
    ['Banner "/etc/issue.net"', { keyword: 'banner', value: '/etc/issue.net' }],
    ['# PermitRootLogin yes', undefined],
    ['   ', undefined],
  ])('%j', (line, expected) => {
    expect(splitDirective(line)).toEqual(expected);
  });
});

describe('checkSshHardening', () => {
  it('is info when sshd_config is missing', async () => {
    const findings = await checkSshHardening({ etcRoot: etc });
    expect(findings).toEqual([expect.objectContaining({ check: 'ssh-hardening', severity: 'info', title: 'source unavailable' })]);
  });

  it('applies OpenSSH defaults when nothing is set: password auth on (medium), root by key (low)', async () => {
    write('sshd_config', DEBIAN);
    expect(brief(await checkSshHardening({ etcRoot: etc }))).toEqual([
      'low permitrootlogin=prohibit-password @default',
      'medium passwordauthentication=yes @default',
    ]);
  });

  it('reports PermitRootLogin yes as high, case-insensitively', async () => {
    write('sshd_config', 'PERMITROOTLOGIN Yes\nPasswordAuthentication no\n');
    const findings = await checkSshHardening({ etcRoot: etc });
    expect(brief(findings)).toEqual([`high permitrootlogin=yes @/etc/ssh/sshd_config:1`]);
    expect(findings[0]?.title).toBe('root login with password allowed');
  });

  it('honours Include drop-ins in lexical order, first value wins', async () => {
    write('sshd_config', `${DEBIAN}PermitRootLogin yes\nPasswordAuthentication yes\n`);
    write('sshd_config.d/50-cloud-init.conf', 'PasswordAuthentication no\n');
    write('sshd_config.d/10-hardening.conf', 'PermitRootLogin no\n');
    write('sshd_config.d/60-late.conf', 'PermitRootLogin yes\n');
    write('sshd_config.d/notes.txt', 'PasswordAuthentication yes\n'); // not *.conf
    expect(await checkSshHardening({ etcRoot: etc })).toEqual([]);
  });

  it('a setting before the Include beats the drop-in', async () => {
    write('sshd_config', `PasswordAuthentication yes\n${DEBIAN}`);
    write('sshd_config.d/50-cloud-init.conf', 'PasswordAuthentication no\nPermitRootLogin no\n');
    expect(brief(await checkSshHardening({ etcRoot: etc }))).toEqual(['medium passwordauthentication=yes @/etc/ssh/sshd_config:1']);
  });

  it('resolves relative Include paths against /etc/ssh', async () => {
    write('sshd_config', 'Include sshd_config.d/*.conf\n');
    write('sshd_config.d/a.conf', 'PermitRootLogin without-password\nPasswordAuthentication no\n');
    expect(brief(await checkSshHardening({ etcRoot: etc }))).toEqual(['low permitrootlogin=without-password @/etc/ssh/sshd_config.d/a.conf:1']);
  });

  it('reports a weaker Match block one level lower, without changing the global verdict', async () => {
    write('sshd_config', [
      'PermitRootLogin no',
      'PasswordAuthentication no',
      'Match Address 10.0.0.0/8',
      '  PasswordAuthentication yes',
      '  PermitRootLogin yes',
      'Match all',
      'PermitEmptyPasswords yes',
      '',
    ].join('\n'));
    const findings = await checkSshHardening({ etcRoot: etc });
    expect(brief(findings)).toEqual([
      'high permitemptypasswords=yes @/etc/ssh/sshd_config:7',
      'low passwordauthentication=yes @/etc/ssh/sshd_config:4',
      'medium permitrootlogin=yes @/etc/ssh/sshd_config:5',
    ]);
    expect(findings[1]).toMatchObject({ title: 'password authentication enabled in Match block', evidence: { match: 'Address 10.0.0.0/8' } });
  });

  it('does not repeat a Match setting that is no weaker than the global one', async () => {
    write('sshd_config', 'PermitRootLogin no\nMatch User deploy\n  PasswordAuthentication yes\n');
    expect(brief(await checkSshHardening({ etcRoot: etc }))).toEqual(['medium passwordauthentication=yes @default']);
  });

  it('stops at include loops', async () => {
    write('sshd_config', 'Include /etc/ssh/sshd_config\nPermitRootLogin no\nPasswordAuthentication no\n');
    const findings = await checkSshHardening({ etcRoot: etc, maxDepth: 3 });
    expect(findings.map((f) => f.title)).toEqual(['sshd_config only partly read']);
  });
});
