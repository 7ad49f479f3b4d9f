/**
 * Reducers for the communication kinds (`incident`, `ack`, `resolve`, `tag`, `note`): pure functions of the fleet
 * state and one envelope, called from `applyEnvelope`. Only what is still needed is kept: open incidents (with
 * their acks) and per-node tags; resolved incidents, notes and past tag changes live in the journal alone.
 */
import type { EnvelopeOf } from '../../protocol/envelope-kinds.js';
import type { IncidentSeverity } from '../../protocol/event-kinds.js';
import type { FleetState, NodeRecord } from './fleet-state.js';

export interface IncidentAck {
  ts: string;
  author: string;
  on_behalf_of?: string;
  text?: string;
}

export interface IncidentRecord {
  /** The id of the `incident` envelope; `ack`/`resolve` refer to it. */
  id: string;
  seq: number;
  ts: string;
  node_id?: string;
  title: string;
  severity: IncidentSeverity;
  status: 'open' | 'acknowledged';
  description?: string;
  author: string;
  on_behalf_of?: string;
  acks: IncidentAck[];
  updated_at: string;
}

/** What a node record carries about its open incidents (enough for the attention model). */
export interface NodeIncidentRef {
  id: string;
  severity: IncidentSeverity;
  title: string;
}

export interface IncidentState {
  open: Map<string, IncidentRecord>;
  resolved: number;
  /** Open incidents dropped because more than `maxOpen` were open at once (oldest first). */
  evicted: number;
  maxOpen: number;
}

export const INCIDENT_BOUNDS = { acksPerIncident: 20, incidentsPerNode: 50, tagsPerNode: 64 } as const;

export function createIncidentState(maxOpen = 10_000): IncidentState {
  return { open: new Map(), resolved: 0, evicted: 0, maxOpen };
}

function nodeRefs(node: NodeRecord): NodeIncidentRef[] {
  return (node.open_incidents ??= []);
}

function detachFromNode(state: FleetState, inc: IncidentRecord): void {
  const node = inc.node_id ? state.nodes.get(inc.node_id) : undefined;
  if (!node?.open_incidents) return;
  node.open_incidents = node.open_incidents.filter((r) => r.id !== inc.id);
}

const who = (env: EnvelopeOf<'incident' | 'ack' | 'resolve'>) => ({ author: env.author, ...(env.on_behalf_of ? { on_behalf_of: env.on_behalf_of } : {}) });

/** Applies `incident`, `ack` and `resolve` envelopes. Unknown incident ids (e.g. already resolved) change nothing. */
export function applyIncidentEvent(state: FleetState, env: EnvelopeOf<'incident'> | EnvelopeOf<'ack'> | EnvelopeOf<'resolve'>): void {
  const inc = state.incidents;
  switch (env.kind) {
    case 'incident': {
      const b = env.body;
      if (b.status === 'resolved') {
        inc.resolved++;
        return;
      }
      const rec: IncidentRecord = {
        id: env.id,
        seq: env.seq,
        ts: env.ts,
        ...(env.node_id ? { node_id: env.node_id } : {}),
        title: b.title,
        severity: b.severity,
        status: b.status === 'acknowledged' ? 'acknowledged' : 'open',
        ...(b.description ? { description: b.description } : {}),
        ...who(env),
        acks: [],
        updated_at: env.ts,
      };
      inc.open.set(rec.id, rec);
      const node = rec.node_id ? state.nodes.get(rec.node_id) : undefined;
      if (node) {
        const refs = nodeRefs(node);
        refs.push({ id: rec.id, severity: rec.severity, title: rec.title });
        if (refs.length > INCIDENT_BOUNDS.incidentsPerNode) refs.shift();
      }
      while (inc.open.size > inc.maxOpen) {
        const oldest = inc.open.values().next().value as IncidentRecord;
        inc.open.delete(oldest.id);
        detachFromNode(state, oldest);
        inc.evicted++;
      }
      return;
    }
    case 'ack': {
      const b = env.body;
      const rec = inc.open.get(b.incident_id);
      if (!rec) return;
      rec.status = 'acknowledged';
      rec.updated_at = env.ts;
      rec.acks.push({ ts: env.ts, ...who(env), ...(b.text ? { text: b.text } : {}) });
      if (rec.acks.length > INCIDENT_BOUNDS.acksPerIncident) rec.acks.shift();
      return;
    }
    case 'resolve': {
      const b = env.body;
      const rec = inc.open.get(b.incident_id);
      if (!rec) return;
      inc.open.delete(rec.id);
      detachFromNode(state, rec);
      inc.resolved++;
      return;
    }
  }
}

/** Applies a `tag` envelope to its node: removals first, then additions, kept sorted and bounded. */
export function applyTagEvent(state: FleetState, env: EnvelopeOf<'tag'>): void {
  const node = env.node_id ? state.nodes.get(env.node_id) : undefined;
  if (!node) return;
  const b = env.body;
  const tags = new Set(node.tags);
  for (const t of b.remove ?? []) tags.delete(t);
  for (const t of b.add ?? []) if (tags.size < INCIDENT_BOUNDS.tagsPerNode) tags.add(t);
  node.tags = [...tags].sort();
}

/** Open incidents, newest first, optionally for one node. */
export function listOpenIncidents(state: FleetState, filter: { node_id?: string } = {}): IncidentRecord[] {
  const out: IncidentRecord[] = [];
  for (const rec of state.incidents.open.values()) if (!filter.node_id || rec.node_id === filter.node_id) out.push(rec);
  return out.reverse();
}
