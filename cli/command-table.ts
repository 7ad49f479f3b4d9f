/**
 * Every `vaultmesh` command as cac needs it for parsing and help (name, arguments, options, usage, examples), and
 * where its action lives. The action modules pull in zod, the HTTP client, the protocol and the ledger; loading them all
 * made every start-up, even `--help`, pay for all of them. This table imports only option texts, so `main.ts`
 * registers every command from it and imports one action module, the matched command's, when it runs.
 */
import type { CAC, Command } from 'cac';
import { setFlagsFromString } from 'node:v8';
import { NODE_STATUSES } from '../protocol/node-statuses.js';
import { SCOPES } from '../protocol/scope-names.js';
import { ADMIN_SOCKET_OFF_OPTION, ADMIN_SOCKET_OPTION } from './api-flags.js';

/** A command's action, called with cac's positional arguments and then its flags. */
// `any`: each action module types its own arguments; cac hands them over untyped.
export type CommandAction = (...args: any[]) => Promise<void>;

export interface CommandEntry {
  name: string;
  /** Declares the command, its options, usage and examples (no action). */
  define(cli: CAC): Command;
  /** Imports the module that runs it. */
  load(): Promise<CommandAction>;
}

const NODE_STATUS_NAMES: readonly string[] = NODE_STATUSES;

function withCommon(cmd: Command): Command {
  return cmd
    .option('--cc-url <url>', 'Command center URL (VAULTMESH_CC_URL, default http://127.0.0.1:8088)')
    .option('--state-dir <dir>', 'Where admin.token and admin.sock live (VAULTMESH_STATE_DIR, default ./state)')
    .option('--token <token>', 'Operator token (VAULTMESH_TOKEN)')
    .option(...ADMIN_SOCKET_OPTION)
    .option(...ADMIN_SOCKET_OFF_OPTION)
    .option('--json', 'Machine-readable output');
}

/** In the order `vaultmesh --help` lists them. */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'cmd',
    define: (cli) =>
      cli
        .command('cmd <action> [...params]', 'Signed commands: send <node_id> <action> | list | show <id> | approve <id> | deny <id>')
        .usage('cmd send <node_id> <action> [--arg k=v ...] [--wait] [--json]\n  cmd list [--node <id>] [--status s]\n  cmd show <id>\n  cmd approve <id>\n  cmd deny <id> [--reason text]')
        .option('--arg <k=v>', 'send: an action argument (repeatable), e.g. --arg unit=nginx.service --arg lines=200')
        .option('--wait', 'send: wait for the receipt and print it (exit 1 unless it succeeded)')
        .option('--timeout <duration>', 'send --wait: give up after this long (default 6m)')
        .option('--ttl <duration>', 'send: command lifetime (default 5m)')
        .option('--node <id>', 'list: only this node')
        .option('--status <status>', 'list: only this status')
        .option('--limit <n>', 'list: at most n (default 50)')
        .option('--reason <text>', 'deny (or approve): why, journaled with a deny')
        .option('--cc-url <url>', 'Command center URL (VAULTMESH_CC_URL, default http://127.0.0.1:8088)')
        .option('--state-dir <dir>', 'Where admin.token and admin.sock live (VAULTMESH_STATE_DIR, default ./state)')
        .option(...ADMIN_SOCKET_OPTION)
        .option(...ADMIN_SOCKET_OFF_OPTION)
        .option('--token <token>', 'Operator token (VAULTMESH_TOKEN)')
        .option('--json', 'Machine-readable output')
        .example('  $ vaultmesh cmd send web-01 ping --wait')
        .example('  $ vaultmesh cmd list --status proposed')
        .example('  $ vaultmesh cmd approve cmd-3f2a9c01d4e5b6a7')
        .example('  $ vaultmesh cmd deny cmd-3f2a9c01d4e5b6a7 --reason "not during the sale"')
        .example('  $ vaultmesh cmd send web-01 collect-journal --arg unit=nginx.service --arg lines=200 --wait')
        .example('  $ vaultmesh cmd list --node web-01 --json'),
    load: async () => (await import('./commands/cmd.js')).cmdAction,
  },
  {
    name: 'ledger',
    define: (cli) =>
      cli
        .command('ledger <action> [arg]', "Merkle ledger tools, offline on a log dir: root | verify | prove <id|seq:N> | check <bundle> | vkey | tiles; export (a PostgreSQL center's ledgers into a log dir); on the API: status")
        .usage('ledger <root|verify|prove <id|seq:N>|check <bundle.json>|vkey|tiles|export|status> [options]')
        .option('--dir, --log-dir <dir>', 'Log dir holding the journals, ROOT.txt and PROOFCHAIN.json (env VAULTMESH_LOG_DIR; default ./logs)')
        .option('--log <name>', 'Which ledger: scans (sovereign-scans.jsonl) or commands (commands.jsonl) (default scans)')
        .option('--json', 'Machine-readable output (root: {"tree_size":n,"root_hash":hex})')
        .option('--out <file>', 'prove: write the bundle to this file instead of stdout; tiles, export: the output directory')
        .option('--seq <n>', 'prove: the envelope with this seq (as vaultmesh logs view shows it) instead of an id')
        .option('--pubkey <hex>', 'verify/check/vkey/tiles: require heads signed by this center public key (env VAULTMESH_LEDGER_PUBKEY); verify: old,new after a key rotation')
        .option('--cc-url <url>', 'status: command center URL (VAULTMESH_CC_URL, default http://127.0.0.1:8088)')
        .option('--state-dir <dir>', 'status: where admin.token lives (VAULTMESH_STATE_DIR, default ./state)')
        .option('--token <token>', 'status: a token with ledger:read (VAULTMESH_TOKEN)')
        .option('--origin <origin>', "vkey: compute from the center's --ledger-origin and --pubkey instead of the log dir's checkpoint")
        .option('--database-url <url>', 'export: the PostgreSQL database of the center (env VAULTMESH_DATABASE_URL)')
        .option('--database-url-file <file>', 'export: a 0600 file holding that URL (env VAULTMESH_DATABASE_URL_FILE)')
        .option('--allow-unsigned-tail', 'verify: lines after the last signed head are a warning, not a failure')
        .example('  $ vaultmesh ledger root --dir /var/lib/vaultmesh/logs --json')
        .example('  $ vaultmesh ledger verify --dir logs --pubkey $(cat state/cc-key.pem.pub)')
        .example('  $ vaultmesh ledger prove scan-01J9... --out proof.json')
        .example('  $ vaultmesh ledger prove seq:1234     # or --seq 1234: the seq column of vaultmesh logs view')
        .example('  $ vaultmesh ledger check proof.json')
        .example('  $ vaultmesh ledger verify --log commands')
        .example('  $ vaultmesh ledger vkey --dir logs                  # the C2SP verifier key of the scans checkpoints')
        .example('  $ vaultmesh ledger tiles --dir logs --out public/ledger   # static checkpoint + tiles of both logs')
        .example('  $ vaultmesh ledger status                           # how many nodes witnessed the latest checkpoints')
        .example('')
        .example('Exit codes: 0 ok, 1 verification failed (or unreadable input), 2 usage'),
    load: async () => (await import('./commands/ledger.js')).ledgerAction,
  },
  {
    name: 'logs',
    define: (cli) =>
      cli
        .command('logs <action>', 'Read the journals offline: view | tail | stats')
        .usage('logs <view|tail|stats> [options]')
        .option('--dir, --log-dir <dir>', 'Log dir holding the *.jsonl journals (env VAULTMESH_LOG_DIR; default ./logs)')
        .option('--kind <kinds>', 'Only these kinds, comma-separated (heartbeat,scan,command,receipt,note,incident,...)')
        .option('--node <id>', 'Only envelopes of this node')
        .option('--since <time>', 'From this time on: 30m, 2h, 7d, 1w back from now, or RFC 3339 (2026-11-20T10:00Z, 2026-11-20)')
        .option('--until <time>', 'Before this time (same forms as --since)')
        .option('--min-severity <level>', 'Only scans with a finding at or above this level, and envelopes with body.severity at or above it (low|medium|high|critical)')
        .option('--limit <n>', 'view: stop after n matching envelopes')
        .option('--ids', 'view: start each line with the envelope id (for vaultmesh ledger prove <id>; the seq column works too)')
        .option('-n, --lines <n>', 'tail: how many past matching envelopes to print before following (default 20)')
        .option('--json', 'view/tail: the exact journal lines (JSONL, pipe into jq); stats: one JSON object')
        .option('--skip-corrupt', 'Report corrupt lines as file:line on stderr and go on (default: stop with exit 1)')
        .example('  $ vaultmesh logs view --since 2h')
        .example('  $ vaultmesh logs view --kind scan --node web-01 --min-severity high --json | jq .body.summary')
        .example('  $ vaultmesh logs view --kind incident,note --since 2026-11-20T10:00Z --until 2026-11-21 --limit 50')
        .example('  $ vaultmesh logs view --kind scan --ids --limit 5    # ids and seqs for vaultmesh ledger prove')
        .example('  $ vaultmesh logs tail -n 50 --kind heartbeat --node web-01')
        .example('  $ vaultmesh logs stats --since 7d')
        .example('  $ VAULTMESH_LOG_DIR=/var/lib/vaultmesh/logs vaultmesh logs stats --json | jq .fleet')
        .example('')
        .example('Exit codes: 0 ok, 1 failure (unreadable file, corrupt line without --skip-corrupt), 2 usage (bad flag value, missing dir)'),
    load: async () => {
      // Before the action's modules load: loading them allocates enough for V8 to double its young generation
      // twice (8 MB of RSS held through the pass), and `logs` keeps it at its start size (cli/commands/logs.ts).
      setFlagsFromString('--semi-space-growth-factor=1');
      return (await import('./commands/logs.js')).logsAction;
    },
  },
  {
    name: 'nodes',
    define: (cli) =>
      withCommon(cli.command('nodes <action> [...node_ids]', 'Fleet nodes: list | show | approve | reject | revoke'))
        .usage('nodes <list|show|approve|reject|revoke> [node_id...] [options]')
        .option('--status <status>', `list: only nodes with this status (${NODE_STATUS_NAMES.join(', ')})`)
        .example('  $ vaultmesh nodes list --status pending')
        .example('  $ vaultmesh nodes approve web-01 web-02 web-03')
        .example('  $ vaultmesh nodes show web-01 --json | jq .last_heartbeat.metrics'),
    load: async () => (await import('./commands/operator.js')).nodesAction,
  },
  {
    name: 'join-token',
    define: (cli) =>
      withCommon(cli.command('join-token <action> [token_id]', 'Join tokens for enrollment: create | list | revoke'))
        .usage('join-token <create|list|revoke> [token_id] [--ttl 1h] [--uses 5] [--label text]')
        .option('--ttl <duration>', 'create: lifetime such as 30m, 1h, 7d (default 1h)')
        .option('--uses <n>', 'create: how many enrollments it admits (default 1)')
        .option('--label <text>', 'create: a note for the token list')
        .example('  $ vaultmesh join-token create --ttl 1h --uses 5')
        .example('  $ vaultmesh join-token create --json | jq -r .token'),
    load: async () => (await import('./commands/operator.js')).joinTokenAction,
  },
  {
    name: 'keys',
    define: (cli) =>
      withCommon(cli.command('keys <action>', 'The command-center signing key: show | rotate'))
        .usage('keys show [--history] [--json]\n  keys rotate [--overlap-secs n] [--prepare]')
        .option('--history', 'show: also the retired keys and the rotation statements (asks the center)')
        .option('--overlap-secs <n>', 'rotate: how long agents still accept the old key (default: the center\'s --center-key-overlap-secs, 7 days)')
        .option('--prepare', 'rotate: only write the next key (cc-key.next.pem) on the center host, to copy to every replica first')
        .example('  $ vaultmesh keys show --json')
        .example('  $ vaultmesh keys rotate')
        .example('  $ vaultmesh keys show --history'),
    load: async () => (await import('./commands/keys.js')).keysAction,
  },
  {
    name: 'tokens',
    define: (cli) =>
      cli
        .command('tokens <action> [token_id]', 'Scoped API tokens for bots: create | list | revoke')
        .usage('tokens <create|list|revoke> [token_id] [--name ci-bot --scopes events:write,nodes:read --ttl 30d]')
        .option('--name <name>', 'create: the token name (becomes the author of what it does, as token:<name>)')
        .option('--scopes <list>', `create: comma-separated scopes (${SCOPES.join(', ')})`)
        .option('--ttl <duration>', 'create: lifetime such as 12h, 30d (default: no expiry)')
        .option('--cc-url <url>', 'Command center URL (VAULTMESH_CC_URL, default http://127.0.0.1:8088)')
        .option('--state-dir <dir>', 'Where admin.token and admin.sock live (VAULTMESH_STATE_DIR, default ./state)')
        .option(...ADMIN_SOCKET_OPTION)
        .option(...ADMIN_SOCKET_OFF_OPTION)
        .option('--token <token>', 'Operator token with the admin scope (VAULTMESH_TOKEN)')
        .option('--json', 'Machine-readable output')
        .example('  $ vaultmesh tokens create --name ci-bot --scopes events:write,nodes:read --ttl 30d')
        .example('  $ vaultmesh tokens create --name grafana --scopes admin --json | jq -r .token')
        .example('  $ vaultmesh tokens revoke 0123456789ab'),
    load: async () => (await import('./commands/tokens.js')).tokensAction,
  },
  {
    name: 'maintenance',
    define: (cli) =>
      withCommon(cli.command('maintenance <action> [window_id]', 'Maintenance windows: start | extend <id> | end <id> | list (silence alarms, hold webhooks, skip or defer scans)'))
        .usage('maintenance start (--node <id> | --profile <p> | --tag <t>) --reason <text> (--until <RFC 3339> | --for <duration>) [--scans skip|defer] [--start <RFC 3339>]\n  maintenance extend <window_id> (--until <RFC 3339> | --for <duration from now>)\n  maintenance end <window_id>\n  maintenance list [--recent] [--json]')
        .option('--node <id>', 'start: the window covers this node')
        .option('--profile <os_profile>', 'start: the window covers every node of this os_profile')
        .option('--tag <tag>', 'start: the window covers every node carrying this tag')
        .option('--reason <text>', 'start: why (required; shown with the silenced alarms)')
        .option('--until <time>', 'start, extend: end time, RFC 3339 (e.g. 2026-12-03T18:00:00Z)')
        .option('--for <duration>', 'start: length from the start; extend: from now; e.g. 90m, 2h, 1d12h (at most 30d)')
        .option('--start <time>', 'start: begin later, RFC 3339 (default now)')
        .option('--scans <rule>', 'start: scheduled scans of covered nodes: skip, or defer until the window ends (default defer)')
        .option('--recent', 'list: also the windows that ended')
        .option('--idempotency-key <key>', 'start: retry-safe key (default: a fresh UUID); the same key answers the window it started')
        .example('  $ vaultmesh maintenance start --node web-01 --reason "kernel upgrade" --for 2h')
        .example('  $ vaultmesh maintenance start --tag env=staging --reason "DB migration" --until 2026-12-04T06:00:00Z --scans skip')
        .example('  $ vaultmesh maintenance list --json')
        .example('  $ vaultmesh maintenance end mw-0123456789ab'),
    load: async () => (await import('./commands/maintenance.js')).maintenanceAction,
  },
  {
    name: 'events',
    define: (cli) =>
      cli
        .command('events <action>', 'Notes, incidents and the event history: post | list')
        .usage('events <post|list> [options]')
        .option('--cc-url <url>', 'Command center URL (VAULTMESH_CC_URL, default http://127.0.0.1:8088)')
        .option('--state-dir <dir>', 'Where admin.token and admin.sock live (VAULTMESH_STATE_DIR, default ./state)')
        .option(...ADMIN_SOCKET_OPTION)
        .option(...ADMIN_SOCKET_OFF_OPTION)
        .option('--token <token>', 'Operator or bot token (VAULTMESH_TOKEN)')
        .option('--json', 'Machine-readable output')
        .option('--kind <kind>', 'post: note | incident | ack | resolve | tag; list: kinds to show, comma-separated')
        .option('--node <id>', 'The node concerned (post) or to filter on (list)')
        .option('--text <text>', 'post note/ack/resolve: the text')
        .option('--title <title>', 'post incident: title')
        .option('--severity <level>', 'post incident: critical | high | medium | low')
        .option('--status <status>', 'post incident: open | acknowledged | resolved (default open)')
        .option('--description <text>', 'post incident: longer description')
        .option('--incident <id>', 'post ack/resolve: the incident id')
        .option('--add <tags>', 'post tag: labels to add, comma-separated')
        .option('--remove <tags>', 'post tag: labels to remove, comma-separated')
        .option('--body <json>', 'post: the whole body as JSON instead of the flags above')
        .option('--idempotency-key <key>', 'post: makes a retry safe (default: a fresh UUID per invocation)')
        .option('--since <seq|time>', 'list: after this seq or RFC 3339 time')
        .option('--limit <n>', 'list: page size 1..1000 (default 100)')
        .option('--all', 'list: follow the cursor through every page')
        .option('--oldest-first', 'list: oldest first (default: the newest first)')
        .example('  $ vaultmesh events post --kind note --node web-01 --text "rebooted for kernel 6.1.0-27"')
        .example('  $ vaultmesh events post --kind incident --node db-01 --title "replica lag" --severity high')
        .example('  $ vaultmesh events post --kind resolve --incident 3f0c… --text "fixed"')
        .example('  $ vaultmesh events list --kind note,incident --since 2026-11-20T00:00:00Z --all --json'),
    load: async () => (await import('./commands/events.js')).eventsAction,
  },
  {
    name: 'store',
    define: (cli) =>
      cli
        .command('store <action>', 'Envelope log stores: copy between a log dir and PostgreSQL, byte for byte')
        .usage('store copy --from <log dir | postgres://…> --to <log dir | postgres://…> [--json]')
        .option('--from <location>', 'the source: a log dir or a postgres:// URL')
        .option('--to <location>', 'the target, which must be empty: a log dir or a postgres:// URL')
        .option('--json', 'print the result as JSON')
        .example('vaultmesh store copy --from /var/log/vaultmesh --to "$(cat /etc/vaultmesh/database-url)"'),
    load: async () => (await import('./commands/store.js')).storeAction,
  },
];

/** Registers every command of the table; the action module is imported only when its command runs. */
export function registerCommands(cli: CAC, table: readonly CommandEntry[] = COMMANDS): void {
  for (const entry of table) {
    entry.define(cli).action(async (...args: unknown[]) => {
      const action = await entry.load();
      await action(...args);
    });
  }
}
