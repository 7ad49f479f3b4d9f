/** Runs the bad-input corpus (or every n-th case of it) against a real center and reports what it found. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCorpus, runCorpus, type CaseResult } from './bad-input-corpus.js';
import { adminCall, checkJournalsValid, enrollNode, fleetSnapshot, journalSizes, sendHeartbeat, startReliabilityCenter } from './harness.js';

export interface BadInputReport {
  cases: number;
  rejected: number;
  fiveXx: CaseResult[];
  failures: CaseResult[];
  statusCounts: Record<string, number>;
  alive: boolean;
  journalProblems: string[];
  stateChanged: boolean;
  journalsChanged: boolean;
  before: unknown;
  after: unknown;
}

export async function runBadInput(opts: { every?: number } = {}): Promise<BadInputReport> {
  const dir = mkdtempSync(join(tmpdir(), 'vm-badinput-'));
  const cc = await startReliabilityCenter(dir);
  try {
    const node = await enrollNode(cc, 'fuzz-node');
    const hb = await sendHeartbeat(cc.url, node);
    if (hb.status !== 200) throw new Error(`set-up heartbeat failed: ${JSON.stringify(hb.json)}`);
    const sessionCookie = await consoleSession(cc.url, cc.token);
    const all = buildCorpus({ adminToken: cc.token, node, sessionCookie });
    const every = opts.every ?? 1;
    const cases = all.filter((c, i) => i % every === 0 || c.name.includes('replay #') || c.always === true);
    const before = await fleetSnapshot(cc);
    const sizesBefore = journalSizes(cc.logDir);
    const results = await runCorpus(cc.url, cases);
    const health = await adminCall(cc.url, cc.token, 'GET', '/healthz').catch(() => ({ status: 0, json: undefined }));
    const alive = cc.child.exitCode === null && health.status === 200;
    const after = alive ? await fleetSnapshot(cc) : undefined;
    const sizesAfter = journalSizes(cc.logDir);
    const statusCounts: Record<string, number> = {};
    for (const r of results) statusCounts[r.status] = (statusCounts[r.status] ?? 0) + 1;
    return {
      cases: cases.length,
      rejected: results.filter((r) => r.ok).length,
      fiveXx: results.filter((r) => r.status >= 500),
      failures: results.filter((r) => !r.ok),
      statusCounts,
      alive,
      journalProblems: checkJournalsValid(cc.logDir),
      stateChanged: JSON.stringify(before) !== JSON.stringify(after),
      journalsChanged: JSON.stringify(sizesBefore) !== JSON.stringify(sizesAfter),
      before,
      after,
    };
  } finally {
    await cc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Signs in to the console with the admin token and returns the session cookie. */
async function consoleSession(url: string, token: string): Promise<string> {
  const res = await fetch(`${url}/console/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
    body: new URLSearchParams({ token }).toString(),
  });
  await res.arrayBuffer();
  const cookie = /vm_session=[^;]+/.exec(res.headers.get('set-cookie') ?? '')?.[0];
  if (!cookie) throw new Error(`console login failed: ${res.status}`);
  return cookie;
}

export function describeFailures(r: BadInputReport, max = 30): string {
  return r.failures
    .slice(0, max)
    .map((f) => `${f.c.name} → ${f.status}: ${f.problem}\n    ${f.c.method} ${f.c.path.slice(0, 120)} body=${String(f.c.body ?? '').slice(0, 160)}`)
    .join('\n');
}
