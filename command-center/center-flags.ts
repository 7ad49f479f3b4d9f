/**
 * The command line of a center: the flags of `vaultmesh-cc` (each with its VAULTMESH_* twin), parsed into a
 * `CenterConfig`, and the one-line message for a listener that cannot start. `vaultmesh-cc` and `npm run demo`
 * both use it, so the demo takes exactly the center's flags.
 */
import { cac } from 'cac';
import { VERSION } from '../lib/version.js';
import { centerConfigSchema, centerEnvNames, kebab, resolveCenterConfig, type CenterConfig } from './config.js';

export interface CenterCommandLine {
  /** The program name in --help and --version. */
  name: string;
  /** Lines for --help's examples. */
  examples: string[];
  /**
   * The program's own defaults, used when neither the flag nor its environment twin is given (the demo's own dirs).
   */
  defaults?: Partial<Record<keyof CenterConfig, unknown>>;
}

/** The center's config from `argv` (flags over environment over `defaults`); undefined after --help or --version. */
export function parseCenterArgs(argv: string[], line: CenterCommandLine, env: NodeJS.ProcessEnv = process.env): CenterConfig | undefined {
  const cli = cac(line.name);
  const names = centerEnvNames();
  // The program's own defaults show in its --help (the demo's dirs are not ./logs and ./state).
  const dflt = (key: keyof CenterConfig, fallback: string) => `default ${line.defaults?.[key] !== undefined ? String(line.defaults[key]) : fallback}`;
  cli
    .usage('[options]')
    .option('--host <host>', `Address to listen on (VAULTMESH_HOST, ${dflt('host', '127.0.0.1')})`, { default: undefined })
    .option('--port <port>', `Port (VAULTMESH_PORT, ${dflt('port', '8088')})`)
    .option('--log-dir <dir>', `Journal directory (VAULTMESH_LOG_DIR, ${dflt('logDir', './logs')})`)
    .option('--state-dir <dir>', `Keys, tokens and admin.sock, 0700 (VAULTMESH_STATE_DIR, ${dflt('stateDir', './state')})`)
    .option('--fsync <mode>', 'always | batch | off (VAULTMESH_FSYNC, default batch)')
    .option('--repair', 'Quarantine corrupt journal lines instead of refusing to start (VAULTMESH_REPAIR)')
    .option('--new-center-key', 'The state dir lost its key but journals exist: make a new key anyway. Agents that pinned the old key refuse commands until re-pinned; see docs/OPERATIONS.md "Lost center key" (VAULTMESH_NEW_CENTER_KEY)')
    .option('--auto-approve', 'Approve every enrollment with a valid join token: demos only (VAULTMESH_AUTO_APPROVE)')
    .option('--heartbeat-secs <n>', `Expected agent heartbeat interval (VAULTMESH_HEARTBEAT_SECS, ${dflt('heartbeatSecs', '30')})`)
    .option('--max-body-bytes <n>', 'Request body limit (VAULTMESH_MAX_BODY_BYTES, default 262144)')
    .option('--max-skew-secs <n>', 'Accepted clock skew of signed requests (VAULTMESH_MAX_SKEW_SECS, default 300)')
    .option('--verify-workers <n>', 'Threads verifying agent request signatures: auto = min(2, cores - 1), 0 = inline (VAULTMESH_VERIFY_WORKERS, default auto)')
    .option('--verify-inline-below <pct>', 'Verify on the main thread instead of waking an idle worker while its event loop is busy less than this % (VAULTMESH_VERIFY_INLINE_BELOW, default 50; 0 = never)')
    .option('--verify-worker-nice <n>', 'Run signature workers this much nicer than the main thread, 0-19 (VAULTMESH_VERIFY_WORKER_NICE, default 10; 0 = same priority)')
    .option('--policy <file>', 'Command policy JSON (VAULTMESH_POLICY, default: the shipped systemd/policy.json)')
    .option('--command-poll-secs <n>', 'Longest agent command long-poll (VAULTMESH_COMMAND_POLL_SECS, default 25)')
    .option('--command-redeliver-secs <n>', 'Redeliver an unanswered command after (VAULTMESH_COMMAND_REDELIVER_SECS, default 30)')
    .option('--admin-socket-off', 'Do not serve the local admin socket <state-dir>/admin.sock (VAULTMESH_ADMIN_SOCKET_OFF)');
  // Every other setting gets a flag from its environment twin, so the two lists cannot drift apart.
  const described = new Set(cli.globalCommand.options.map((opt) => opt.name));
  for (const [key, envName] of Object.entries(names)) {
    const flag = kebab(key);
    if (described.has(key)) continue;
    const isBool = typeof centerConfigSchema.shape[key as keyof typeof centerConfigSchema.shape].safeParse(undefined).data === 'boolean';
    cli.option(isBool ? `--${flag}` : `--${flag} <value>`, `(${envName}) see docs/OPERATIONS.md`);
  }
  for (const example of line.examples) cli.example(example);
  cli.help().version(VERSION);
  const parsed = cli.parse(argv, { run: false });
  if (parsed.options.help || parsed.options.version) return undefined;
  const o = parsed.options;
  const flags: Record<string, unknown> = {};
  for (const key of Object.keys(names)) {
    if (o[key] !== undefined) flags[key] = o[key];
    else if (line.defaults && key in line.defaults && (env[names[key]!] ?? '') === '') flags[key] = line.defaults[key as keyof CenterConfig];
  }
  return resolveCenterConfig(flags, env);
}

/** One line for a listener that cannot start (busy port, privileged port, foreign address); undefined otherwise. */
export function describeListenError(err: unknown, config: Pick<CenterConfig, 'host' | 'port'>): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return `port ${config.port} on ${config.host} is in use; pick another with --port`;
  if (code === 'EACCES') return `no permission to listen on port ${config.port} on ${config.host} (ports below 1024 need privileges); pick another with --port`;
  if (code === 'EADDRNOTAVAIL') return `${config.host} is not an address of this machine; pick another with --host`;
  return undefined;
}

/**
 * Runs `start` (a center's listen); a listener that cannot start is one line on stderr and exit code 1, with
 * undefined returned, instead of a stack. Any other failure is thrown on.
 */
export async function startOrExplain<T>(start: () => Promise<T>, config: Pick<CenterConfig, 'host' | 'port'>): Promise<T | undefined> {
  try {
    return await start();
  } catch (err) {
    const line = describeListenError(err, config);
    if (!line) throw err;
    console.error(`vaultmesh-cc: ${line}`);
    process.exitCode = 1;
    return undefined;
  }
}
