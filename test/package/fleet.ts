/**
 * A center, the CLI and an agent as installed programs (a global npm install, single executables, the Debian
 * packages' /usr/bin): the center starts, the CLI makes a join token, the agent enrolls, is approved and heartbeats.
 * Each program is an executable path run directly, with exactly the environment and cwd given.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface Programs {
  cc: string;
  agent: string;
  cli: string;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run as this user (root only): how the packaged services run. */
export interface AsUser {
  uid: number;
  gid: number;
}

export function run(bin: string, args: string[], opts: { env: Record<string, string>; cwd: string; timeoutMs?: number; as?: AsUser }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], ...opts.as });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface RunningCenter {
  url: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<number | null>;
}

/** Starts the center on a free port; resolves once it prints where it listens. */
export function startCenter(bin: string, args: string[], opts: { env: Record<string, string>; cwd: string; as?: AsUser }): Promise<RunningCenter> {
  const child = spawn(bin, ['--port', '0', ...args], { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], ...opts.as });
  let out = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`center did not start:\n${out}`));
    }, 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({
          url: m[1]!,
          child,
          output: () => out,
          stop: async () => {
            if (child.exitCode === null) child.kill('SIGTERM');
            return exited;
          },
        });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`center exited with ${code}:\n${out}`));
    });
  });
}

/**
 * The enrollment walk of docs/DEPLOY.md with these programs: join token from the CLI, agent --once (pending),
 * approval from the CLI, agent --once (heartbeat accepted), the node listed as ok. Returns the CLI's node list.
 */
export async function enrollAndHeartbeat(p: Programs, o: { url: string; ccStateDir: string; agentStateDir: string; nodeId: string; env: Record<string, string>; cwd: string; agentAs?: AsUser }): Promise<{ status: string; agent_version: string }> {
  const cli = async (args: string[]) => {
    const r = await run(p.cli, [...args, '--cc-url', o.url, '--state-dir', o.ccStateDir], { env: o.env, cwd: o.cwd });
    if (r.code !== 0) throw new Error(`vaultmesh ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const agentArgs = ['--once', '--cc-url', o.url, '--state-dir', o.agentStateDir, '--root', join(o.agentStateDir, '..'), '--node-id', o.nodeId, '--cloudflared-check', 'none', '--settings', '/nonexistent'];
  const token = (JSON.parse(await cli(['join-token', 'create', '--ttl', '10m', '--uses', '1', '--json'])) as { token: string }).token;
  const first = await run(p.agent, agentArgs, { env: { ...o.env, VAULTMESH_JOIN_TOKEN: token }, cwd: o.cwd, ...(o.agentAs ? { as: o.agentAs } : {}) });
  if (first.code !== 0 || !/enrollment pending/.test(first.stdout)) throw new Error(`agent enroll: ${first.code}\n${first.stdout}\n${first.stderr}`);
  await cli(['nodes', 'approve', o.nodeId]);
  const second = await run(p.agent, agentArgs, { env: o.env, cwd: o.cwd, ...(o.agentAs ? { as: o.agentAs } : {}) });
  if (second.code !== 0 || !/heartbeat accepted/.test(second.stdout)) throw new Error(`agent heartbeat: ${second.code}\n${second.stdout}\n${second.stderr}`);
  const nodes = JSON.parse(await cli(['nodes', 'list', '--json'])) as { node_id: string; status: string; agent_version: string }[];
  const node = nodes.find((n) => n.node_id === o.nodeId);
  if (!node) throw new Error(`node ${o.nodeId} not listed: ${JSON.stringify(nodes)}`);
  return node;
}

/** The console's login page renders (views) and its stylesheet and htmx are served (assets, a dependency's file). */
export async function expectConsoleServed(url: string): Promise<void> {
  const login = await fetch(`${url}/console/login`);
  const html = await login.text();
  if (login.status !== 200 || !/<form/.test(html)) throw new Error(`login page: ${login.status}\n${html}`);
  const css = /href="([^"]*console\.css)"/.exec(html);
  if (!css) throw new Error(`login page links no console.css:\n${html}`);
  for (const [path, marker] of [[css[1]!, /\{/], ['/console/assets/htmx.min.js', /htmx/], ['/console/assets/hx-sse.js', /sse/i]] as const) {
    const r = await fetch(new URL(path, url));
    const body = await r.text();
    if (r.status !== 200 || !marker.test(body)) throw new Error(`${path}: ${r.status} ${body.slice(0, 200)}`);
  }
}
