/**
 * The agent's half of center key rotation (protocol/center-key-rotation.ts): which center keys it trusts for
 * commands (pinned or first-use keys, carried forward by the rotation statements it accepted), and what it does
 * with the statements an enroll or heartbeat answer offers. Accepted statements are kept in agent-state.json
 * (written atomically), so the trust survives restarts and a chain k0→k1→k2 is applied in order.
 */
import { z } from 'zod';
import { missedRotationMessage, offeredRotationsSchema, reviewRotations, trustedAfterRotations, type TrustedKeys } from '../protocol/center-key-rotation.js';
import type { AgentStateStore, PersistedAgentState } from './agent-state.js';
import { pinnedCenterKeys } from './command-setup.js';

/** The keys that verify commands now: pinned (or first-use) keys, then every accepted rotation, minus expired old keys. */
export function trustedCenterKeys(configured: readonly string[], s: PersistedAgentState, now: Date): TrustedKeys {
  return trustedAfterRotations(pinnedCenterKeys(configured, s.tofu_center_keys), s.center_key_rotations, now);
}

const answerPartSchema = z.looseObject({
  center_key_rotations: offeredRotationsSchema.optional(),
  center_key_notice: z.looseObject({ code: z.string().max(64), message: z.string().max(2000) }).optional(),
});

export interface RotationLearner {
  /** Reads the rotation parts of an enroll or heartbeat answer; accepts what it may, logs what it must not. */
  learn(answer: unknown): void;
  /** Why commands signed by `keyId` are refused, when it is the key of a rotation this agent missed. */
  explainUnknownKey(keyId: string): string | undefined;
}

export function createRotationLearner(deps: { configured: readonly string[]; store: AgentStateStore; log: (msg: string) => void; now: () => Date }): RotationLearner {
  // Said once per process and key: every heartbeat would otherwise repeat it.
  const said = new Set<string>();
  // Missed rotations by new key id, and the center's last notice: the words a refused command's receipt carries.
  const missed = new Map<string, string>();
  let notice: string | undefined;
  const sayOnce = (key: string, msg: string) => {
    if (said.has(key)) return;
    said.add(key);
    deps.log(msg);
  };
  return {
    learn(answer) {
      const r = answerPartSchema.safeParse(answer);
      if (!r.success) {
        sayOnce('malformed', `WARNING: ignoring malformed center key rotation statements in the center's answer (${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message})`);
        return;
      }
      const offered = r.data.center_key_rotations ?? [];
      const now = deps.now();
      const s = deps.store.read();
      if (offered.length) {
        const base = pinnedCenterKeys(deps.configured, s.tofu_center_keys);
        const review = reviewRotations(base, s.center_key_rotations, offered, now);
        for (const f of review.refused) sayOnce(`refused:${f.serial}`, `WARNING: refused center key rotation statement #${f.serial}: ${f.reason}`);
        if (review.accept.length) {
          deps.store.write({ ...s, center_key_rotations: [...s.center_key_rotations, ...review.accept] });
          for (const { statement: st } of review.accept) {
            deps.log(`center key rotated: now trusting ${st.new_key_id} (announced by ${st.old_key_id}, effective ${st.effective_at}); ${st.old_key_id} stays trusted for commands until ${st.overlap_until}`);
          }
        }
        if (review.missed) {
          const full = offered.find((o) => o.statement.new_key_id === review.missed!.new_key_id);
          const words = `CENTER_KEY_ROTATION_MISSED: ${missedRotationMessage(review.missed, full?.statement.new_public_key)}`;
          missed.set(review.missed.new_key_id, words);
          sayOnce(`missed:${review.missed.new_key_id}`, `ERROR: ${words}`);
          return;
        }
      }
      const n = r.data.center_key_notice;
      notice = n ? `${n.code}: ${n.message}` : undefined;
      if (n) sayOnce(`notice:${n.code}:${n.message}`, `ERROR: ${n.code} (from the center): ${n.message}`);
    },
    explainUnknownKey: (keyId) => missed.get(keyId) ?? notice,
  };
}
