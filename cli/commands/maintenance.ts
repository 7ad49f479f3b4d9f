/**
 * `vaultmesh maintenance start|extend|end|list`: maintenance windows for a node, an os_profile or a tag (events:write to
 * start and end, nodes:read to list). During a window the center silences staleness, service and tunnel alarms of the
 * covered nodes, holds their webhooks (one summary at the end) and skips or defers their scheduled scans.
 */
import { randomUUID } from 'node:crypto';
import { VaultMeshError } from '../../protocol/errors.js';
import { parseDuration } from '../../protocol/maintenance.js';
import { apiOptionsFromFlags, createApiClient } from '../api-client.js';
import { maintenanceListAnswer, maintenanceWindowAnswer } from '../answers.js';
import { printOut, renderJson, renderTable } from '../output.js';
import type { CommonFlags } from './operator.js';

const usage = (msg: string) => new VaultMeshError('USAGE', msg);

export interface MaintenanceFlags extends CommonFlags {
  node?: string;
  profile?: string;
  tag?: string;
  reason?: string;
  until?: string;
  for?: string;
  start?: string;
  scans?: string;
  recent?: boolean;
  idempotencyKey?: string;
}

const str = (v: unknown): string | undefined => (v === undefined || v === true || v === false ? undefined : String(v));

/** The `POST /api/maintenance` body from the flags, or a USAGE error naming what is missing or wrong. */
export function startRequest(f: MaintenanceFlags): Record<string, unknown> {
  const targets = [['node_id', str(f.node)], ['os_profile', str(f.profile)], ['tag', str(f.tag)]].filter(([, v]) => v !== undefined) as Array<[string, string]>;
  if (targets.length !== 1) throw usage('maintenance start needs exactly one of --node <id>, --profile <os_profile>, --tag <tag>');
  const reason = str(f.reason);
  if (!reason?.trim()) throw usage('maintenance start needs --reason <text> (why the window, for whoever reads the alarms)');
  const until = str(f.until);
  const forText = str(f.for);
  if ((until === undefined) === (forText === undefined)) throw usage('maintenance start needs exactly one of --until <RFC 3339 time> or --for <duration such as 2h, 90m, 1d12h>');
  const body: Record<string, unknown> = { [targets[0]![0]]: targets[0]![1], reason };
  if (until !== undefined) body.until = until;
  else {
    const secs = parseDuration(forText!);
    if (secs === undefined) throw usage(`bad duration ${JSON.stringify(forText)}: use e.g. 90m, 2h, 1d12h`);
    body.for_secs = secs;
  }
  const start = str(f.start);
  if (start !== undefined) body.starts_at = start;
  const scans = str(f.scans);
  if (scans !== undefined) {
    if (scans !== 'skip' && scans !== 'defer') throw usage(`--scans must be skip or defer, not ${JSON.stringify(scans)}`);
    body.scans = scans;
  }
  return body;
}

function targetText(t: Record<string, string>): string {
  if (t.node_id) return `node ${t.node_id}`;
  if (t.os_profile) return `profile ${t.os_profile}`;
  return `tag ${t.tag ?? '?'}`;
}

/** `vaultmesh maintenance` (declared in cli/command-table.ts). */
export async function maintenanceAction(action: string, id: string | undefined, f: MaintenanceFlags): Promise<void> {
  if (action === 'start') {
    if (id !== undefined) throw usage('maintenance start takes no window id (name the target with --node, --profile or --tag)');
    const body = startRequest(f);
    // Retried with the same key, the center answers the window it started the first time instead of a second one.
    const key = f.idempotencyKey !== undefined ? String(f.idempotencyKey) : randomUUID();
    const w = await createApiClient(apiOptionsFromFlags(f)).post('/api/maintenance', maintenanceWindowAnswer, body, { 'idempotency-key': key });
    printOut(
      f.json
        ? renderJson(w)
        : `${w.id}: ${targetText(w.target)} ${w.state === 'scheduled' ? `from ${w.starts_at} ` : ''}until ${w.ends_at} (scans: ${w.scans}; covers ${w.nodes.length} node${w.nodes.length === 1 ? '' : 's'})\n`,
    );
    return;
  }
  if (action === 'end') {
    if (!id) throw usage('maintenance end needs a window id (see maintenance list)');
    const w = await createApiClient(apiOptionsFromFlags(f)).post(`/api/maintenance/${encodeURIComponent(id)}/end`, maintenanceWindowAnswer, {});
    printOut(f.json ? renderJson(w) : `${w.id}: ended (${w.held.total} webhook event${w.held.total === 1 ? '' : 's'} held; one summary goes out now)\n`);
    return;
  }
  if (action === 'extend') {
    if (!id) throw usage('maintenance extend needs a window id (see maintenance list)');
    const until = str(f.until);
    const forText = str(f.for);
    if ((until === undefined) === (forText === undefined)) throw usage('maintenance extend needs exactly one of --until <RFC 3339 time> or --for <duration from now>');
    let body: Record<string, unknown> = { until };
    if (forText !== undefined) {
      const secs = parseDuration(forText);
      if (secs === undefined) throw usage(`bad duration ${JSON.stringify(forText)}: use e.g. 90m, 2h, 1d12h`);
      body = { for_secs: secs };
    }
    const w = await createApiClient(apiOptionsFromFlags(f)).post(`/api/maintenance/${encodeURIComponent(id)}/extend`, maintenanceWindowAnswer, body);
    printOut(f.json ? renderJson(w) : `${w.id}: now until ${w.ends_at}\n`);
    return;
  }
  if (action === 'list') {
    if (id !== undefined) throw usage('maintenance list takes no window id');
    const r = await createApiClient(apiOptionsFromFlags(f)).get(`/api/maintenance${f.recent ? '?recent=1' : ''}`, maintenanceListAnswer);
    if (f.json) {
      printOut(renderJson(r.items));
      return;
    }
    const rows = r.items.map((w) => ({ id: w.id, target: targetText(w.target), state: w.state, ends_at: w.ends_at, scans: w.scans, nodes: w.nodes.length, held: w.held.total, reason: w.reason }));
    printOut(rows.length ? renderTable(rows, ['id', 'target', 'state', 'ends_at', 'scans', 'nodes', 'held', 'reason']) : 'no maintenance windows\n');
    return;
  }
  throw usage(`unknown action maintenance ${action}: use start, extend, end or list`);
}
