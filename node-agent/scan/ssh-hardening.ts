/**
 * Check `ssh-hardening`: PermitRootLogin, PasswordAuthentication and PermitEmptyPasswords as sshd would resolve
 * them from sshd_config and its `Include`s, read as files (no `sshd -T`: that needs the sshd binary and root).
 *
 * sshd semantics reproduced here (sshd_config(5)):
 *  - keywords are case-insensitive; `Keyword value` and `Keyword=value` are both accepted;
 *  - for each keyword the FIRST value obtained wins, which is why distributions put `Include
 *    /etc/ssh/sshd_config.d/*.conf` at the top of sshd_config so drop-ins override the defaults below;
 *  - `Include` takes globs, expanded in lexical order, relative paths resolved against /etc/ssh, and is processed
 *    in place (also inside a `Match` block, where the included lines belong to that block);
 *  - a `Match` block lasts until the next `Match` (or `Match all`, which returns to global scope).
 * Match blocks are handled conservatively: they never relax the global verdict, but a weak setting inside one is
 * reported one severity lower (it applies to some connections only), with the Match criteria as evidence.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { severityRank, type Finding, type Severity } from '../../protocol/scan.js';
import { createFinding, errnoCode, sourceUnavailable } from './finding.js';

export const SSH_HARDENING_CHECK = 'ssh-hardening';

export interface SshHardeningOptions {
  /** Root standing for /etc: sshd_config is read from `${etcRoot}/ssh/sshd_config`, and absolute Include paths
   * under /etc/ are re-rooted here (so tests can use a fixture directory). */
  etcRoot: string;
  /** Bounds: include nesting (sshd itself stops at 16), files read, and bytes per file. */
  maxDepth?: number;
  maxFiles?: number;
  maxFileBytes?: number;
}

export interface SshSetting {
  keyword: string;
  value: string;
  /** `path:line` the value came from. */
  source: string;
  /** The `Match` criteria in force, or undefined at global scope. */
  match?: string;
}

export interface SshConfigView {
  /** First value per lower-cased keyword at global scope (what applies when no Match block matches). */
  global: Map<string, SshSetting>;
  /** Every setting made inside a Match block, in file order. */
  matched: SshSetting[];
  filesRead: string[];
  warnings: string[];
}

const INTERESTING = new Set(['permitrootlogin', 'passwordauthentication', 'permitemptypasswords']);

interface ParseState {
  view: SshConfigView;
  match: string | undefined;
  files: number;
}

/** Splits a config line into keyword and value; undefined for blank and comment lines. */
export function splitDirective(line: string): { keyword: string; value: string } | undefined {
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return undefined;
  const m = /^([A-Za-z][A-Za-z0-9]*)(?:\s*=\s*|\s+)(.*)$/.exec(trimmed);
  if (!m) return { keyword: trimmed.toLowerCase(), value: '' };
  // A token starting with '#' ends the line (OpenSSH >= 8.x argv_split with comment termination).
  const value = m[2]!.replace(/(^|\s)#.*$/, '').trim();
  return { keyword: m[1]!.toLowerCase(), value: value.replace(/^"(.*)"$/, '$1') };
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${escaped}$`);
}

export class SshConfigReader {
  private readonly maxDepth: number;
  private readonly maxFiles: number;
  private readonly maxFileBytes: number;

  constructor(private readonly etcRoot: string, limits: Pick<SshHardeningOptions, 'maxDepth' | 'maxFiles' | 'maxFileBytes'> = {}) {
    this.maxDepth = limits.maxDepth ?? 16;
    this.maxFiles = limits.maxFiles ?? 64;
    this.maxFileBytes = limits.maxFileBytes ?? 1024 * 1024;
  }

  /** Maps a path as written in sshd_config to the file to read. */
  resolve(path: string): string {
    if (!isAbsolute(path)) return join(this.etcRoot, 'ssh', path);
    if (path === '/etc' || path.startsWith('/etc/')) return join(this.etcRoot, path.slice('/etc'.length));
    return path;
  }

  /** Expands an Include argument: globs in the last path component only (what every distribution uses). */
  async expand(pattern: string): Promise<string[]> {
    const resolved = this.resolve(pattern);
    const name = basename(resolved);
    if (!/[*?[]/.test(name)) return [resolved];
    let entries: string[];
    try {
      entries = await readdir(dirname(resolved));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    }
    const re = globToRegExp(name);
    // glob(3) sorts its results, so drop-ins apply in lexical (C locale) order.
    return entries.filter((e) => re.test(e) && !e.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((e) => join(dirname(resolved), e));
  }

  async read(path: string): Promise<SshConfigView> {
    const state: ParseState = { view: { global: new Map(), matched: [], filesRead: [], warnings: [] }, match: undefined, files: 0 };
    await this.readFile(path, state, 0, true);
    return state.view;
  }

  private async readFile(path: string, state: ParseState, depth: number, required: boolean): Promise<void> {
    if (depth > this.maxDepth) {
      state.view.warnings.push(`Include nesting deeper than ${this.maxDepth} at ${path}; not followed`);
      return;
    }
    if (state.files >= this.maxFiles) {
      state.view.warnings.push(`more than ${this.maxFiles} config files; ${path} not read`);
      return;
    }
    let text: string;
    try {
      const st = await stat(path);
      if (!st.isFile()) return;
      if (st.size > this.maxFileBytes) {
        state.view.warnings.push(`${path} is larger than ${this.maxFileBytes} bytes; not read`);
        return;
      }
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (!required && errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    state.files += 1;
    state.view.filesRead.push(path);
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i += 1) {
      const d = splitDirective(lines[i]!);
      if (!d) continue;
      if (d.keyword === 'match') {
        state.match = d.value.toLowerCase() === 'all' ? undefined : d.value;
        continue;
      }
      if (d.keyword === 'include') {
        for (const arg of d.value.split(/\s+/).filter(Boolean)) {
          for (const file of await this.expand(arg)) await this.readFile(file, state, depth + 1, false);
        }
        continue;
      }
      if (!INTERESTING.has(d.keyword)) continue;
      const setting: SshSetting = { keyword: d.keyword, value: d.value.toLowerCase(), source: `${path}:${i + 1}` };
      if (state.match !== undefined) state.view.matched.push({ ...setting, match: state.match });
      else if (!state.view.global.has(d.keyword)) state.view.global.set(d.keyword, setting);
    }
  }
}

/** OpenSSH defaults (portable OpenSSH >= 7.0) for the keywords this check judges. */
export const SSHD_DEFAULTS: Readonly<Record<string, string>> = {
  permitrootlogin: 'prohibit-password',
  passwordauthentication: 'yes',
  permitemptypasswords: 'no',
};

interface Verdict {
  severity: Severity;
  title: string;
  detail: string;
}

/** Judges one keyword's value; undefined means hardened. */
export function judge(keyword: string, value: string): Verdict | undefined {
  switch (keyword) {
    case 'permitrootlogin':
      if (value === 'yes') return { severity: 'high', title: 'root login with password allowed', detail: 'PermitRootLogin yes lets root log in with a password. Set PermitRootLogin no (or prohibit-password).' };
      if (value === 'prohibit-password' || value === 'without-password')
        return { severity: 'low', title: 'root login with keys allowed', detail: `PermitRootLogin ${value} still lets root log in with a key. Set PermitRootLogin no and use sudo.` };
      if (value === 'forced-commands-only') return { severity: 'info', title: 'root login for forced commands', detail: 'PermitRootLogin forced-commands-only lets root run key-bound forced commands only.' };
      return undefined;
    case 'passwordauthentication':
      if (value === 'yes') return { severity: 'medium', title: 'password authentication enabled', detail: 'PasswordAuthentication yes exposes sshd to password guessing. Set PasswordAuthentication no and use keys.' };
      return undefined;
    case 'permitemptypasswords':
      if (value === 'yes') return { severity: 'high', title: 'empty passwords permitted', detail: 'PermitEmptyPasswords yes lets accounts with an empty password log in. Set PermitEmptyPasswords no.' };
      return undefined;
    default:
      return undefined;
  }
}

const LOWER: Record<Severity, Severity> = { critical: 'high', high: 'medium', medium: 'low', low: 'info', info: 'info' };

export async function checkSshHardening(options: SshHardeningOptions): Promise<Finding[]> {
  const reader = new SshConfigReader(options.etcRoot, options);
  const main = join(options.etcRoot, 'ssh', 'sshd_config');
  let view: SshConfigView;
  try {
    view = await reader.read(main);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [sourceUnavailable(SSH_HARDENING_CHECK, `${main} not found: sshd is not installed (or not configured) on this host.`, { path: main })];
    throw err;
  }

  const findings: Finding[] = [];
  const globalRank = new Map<string, number>();
  for (const keyword of INTERESTING) {
    const setting = view.global.get(keyword);
    const value = setting?.value ?? SSHD_DEFAULTS[keyword]!;
    const verdict = judge(keyword, value);
    if (!verdict) continue;
    globalRank.set(keyword, severityRank(verdict.severity));
    findings.push(
      createFinding({
        check: SSH_HARDENING_CHECK,
        severity: verdict.severity,
        title: verdict.title,
        detail: setting ? `${verdict.detail} (set at ${setting.source})` : `${verdict.detail} (not set: the OpenSSH default is ${value})`,
        evidence: { keyword: setting?.keyword ?? keyword, value, source: setting?.source ?? 'default' },
      }),
    );
  }
  for (const s of view.matched) {
    const verdict = judge(s.keyword, s.value);
    // Only a Match block that is weaker than the global setting adds information.
    if (!verdict || severityRank(verdict.severity) <= (globalRank.get(s.keyword) ?? -1)) continue;
    findings.push(
      createFinding({
        check: SSH_HARDENING_CHECK,
        severity: LOWER[verdict.severity],
        title: `${verdict.title} in Match block`,
        detail: `${verdict.detail} Applies to connections matching "${s.match ?? ''}" (set at ${s.source}).`,
        evidence: { keyword: s.keyword, value: s.value, source: s.source, match: s.match ?? null },
      }),
    );
  }
  for (const w of view.warnings.slice(0, 5)) {
    findings.push(createFinding({ check: SSH_HARDENING_CHECK, severity: 'info', title: 'sshd_config only partly read', detail: w }));
  }
  return findings;
}
