/**
 * The cac layer for `vaultmesh logs view|tail|stats`: maps flags to typed options, calls the library functions in
 * cli/logs/, and turns failures into one line on stderr and an exit code (0 ok, 1 failure, 2 usage).
 * cac matches a command on one word, so `logs <action>` is registered once and dispatched here. Each action's
 * module is imported when it runs: what one pass loads stays in its memory for the whole pass (docs/BENCHMARKS.md).
 */
import type { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { parseFilter, usageError, type RawFilterOptions } from '../logs/filters.js';
import { printOut, renderCliError, renderJsonLine } from '../output.js';

export interface LogsDeps {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  now: () => number;
  /** Where Ctrl-C comes from; tests pass their own emitter. */
  signals: Pick<NodeJS.Process, 'once' | 'off'>;
  setExitCode: (code: number) => void;
}

const defaultDeps = (): LogsDeps => ({
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  now: Date.now,
  signals: process,
  setExitCode: (code) => {
    process.exitCode = code;
  },
});

interface LogsFlags extends RawFilterOptions {
  dir?: unknown;
  json?: boolean;
  skipCorrupt?: boolean;
  lines?: unknown;
  ids?: boolean;
}

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Colour only for a terminal, and never when the user opted out (https://no-color.org). */
export function wantsColour(stdout: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stdout.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '');
}

function parseLines(value: unknown): number {
  if (value === undefined) return 20;
  const v = Array.isArray(value) ? value[value.length - 1] : value;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw usageError(`bad -n "${String(v)}": must be a whole number`, 'e.g. -n 50 (0 prints only new lines)', 'lines');
  return n;
}

/** Runs one `logs` action; resolves to the exit code. Exported for in-process tests. */
export async function runLogs(action: string | undefined, flags: LogsFlags, deps: LogsDeps = defaultDeps()): Promise<number> {
  const { stdout, stderr, env } = deps;
  const warn = (message: string): void => void stderr.write(`vaultmesh logs: warning: ${message}\n`);
  try {
    const dirFlag = Array.isArray(flags.dir) ? flags.dir[flags.dir.length - 1] : flags.dir;
    if (dirFlag === true || dirFlag === '') throw usageError('--dir needs a value', 'e.g. --dir /var/lib/vaultmesh/logs', 'dir');
    const dir = String(dirFlag ?? env.VAULTMESH_LOG_DIR ?? './logs');
    const filter = await parseFilter(flags, deps.now());
    const common = { dir, filter, skipCorrupt: flags.skipCorrupt === true, warn };
    if (flags.ids !== undefined && action !== 'view') throw usageError('--ids applies to view', 'vaultmesh logs view --ids', 'ids');
    if (flags.ids !== undefined && flags.json === true) throw usageError('--ids does not apply to --json', 'the JSON lines already carry id and seq', 'ids');
    switch (action) {
      case 'view': {
        const { viewLogs } = await import('../logs/view.js');
        await viewLogs({ ...common, json: flags.json === true, ids: flags.ids === true, colour: wantsColour(stdout, env), out: stdout });
        return EXIT.ok;
      }
      case 'tail': {
        if (filter.limit !== undefined) throw usageError('--limit does not apply to tail', 'use -n <count> for how many past lines to show', 'limit');
        const lines = parseLines(flags.lines);
        const { tailLogs } = await import('../logs/tail.js');
        const ctl = new AbortController();
        const stop = (): void => ctl.abort();
        deps.signals.once('SIGINT', stop);
        deps.signals.once('SIGTERM', stop);
        try {
          await tailLogs({ ...common, lines, json: flags.json === true, colour: wantsColour(stdout, env), out: stdout, signal: ctl.signal });
        } finally {
          deps.signals.off('SIGINT', stop);
          deps.signals.off('SIGTERM', stop);
        }
        return EXIT.ok;
      }
      case 'stats': {
        if (filter.limit !== undefined) throw usageError('--limit does not apply to stats', 'stats always covers every matching envelope; narrow it with --since/--node/--kind', 'limit');
        const { computeStats, renderStatsTable } = await import('../logs/stats.js');
        const report = await computeStats(common);
        // Node ids and times come from the journal as written, which anyone with access to the files may have edited.
        printOut(flags.json === true ? `${renderJsonLine(report)}\n` : `${renderStatsTable(report)}\n`, stdout);
        return EXIT.ok;
      }
      default:
        throw usageError(action ? `unknown logs action "${action}"` : 'missing logs action', 'use one of: vaultmesh logs view | tail | stats (see --help)', 'action');
    }
  } catch (err) {
    const { text, exitCode } = renderCliError('vaultmesh logs', err);
    stderr.write(text);
    return exitCode === 2 ? EXIT.usage : EXIT.failure;
  }
}

/** `vaultmesh logs` as the CLI runs it (declared in cli/command-table.ts): sets the exit code. */
export async function logsAction(action: string, flags: LogsFlags): Promise<void> {
  // A pass over the journals allocates a few objects per line that die at once. V8 answers that allocation rate by
  // doubling its young generation up to 3 × 16 MB, which made peak RSS grow with the journals' size (about 100 MB
  // at 64 MB, 160 MB at 1 GB). Keeping the young generation at its start size (the growth factor is read each time
  // V8 would grow it) costs more, cheaper scavenges and no measurable time, and keeps the peak flat.
  setFlagsFromString('--semi-space-growth-factor=1');
  const deps = defaultDeps();
  deps.setExitCode(await runLogs(action, flags, deps));
}
