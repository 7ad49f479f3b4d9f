#!/usr/bin/env node
/**
 * What center key rotation costs where it runs often (run `npm run build` first). In-process, one core, pure code
 * from dist/:
 *  - the heartbeat answer's rotation part (`rotationAnswer`) for an agent that already trusts the current key, after
 *    16 rotations, against the same call with no rotation at all: the steady state after a rotation;
 *  - the attention check's part (`missedRotation`) per node, the same two ways (the console and the attention
 *    monitor ask it for every node);
 *  - an agent taking a 16-link chain at once (`reviewRotations`: 32 Ed25519 verifications and the rules) against
 *    the 32 bare verifications (`verifyPayload`) it cannot do without.
 * Alternating rounds, best of each.
 *
 *   node bench/center-key.mjs                        # prints a table
 *   import { run } from './bench/center-key.mjs'     # rows { name, value, unit, baseline?, ratio? }
 * Bounded: VAULTMESH_BENCH_KEY_CALLS (default 200000) calls per timing, 5 rounds.
 */
import { fileURLToPath } from 'node:url';
import { dist } from './lib/center-process.mjs';
import { round } from './lib/stats.mjs';

const CALLS = Number(process.env.VAULTMESH_BENCH_KEY_CALLS ?? 200_000);
const ROUNDS = 5;
const LINKS = 16;

export async function run() {
  const { signRotation, reviewRotations, missedRotation } = await dist('protocol/center-key-rotation.js');
  const { rotationAnswer } = await dist('command-center/keys/agent-answer.js');
  const { generateKeyPair } = await dist('protocol/keys.js');
  const { verifyPayload } = await dist('protocol/signing.js');

  const now = new Date();
  const keys = Array.from({ length: LINKS + 1 }, () => generateKeyPair());
  const history = keys.slice(1).map((to, i) => ({
    ...signRotation(
      {
        serial: i + 1,
        old_public_key: keys[i].publicKeyHex,
        old_key_id: keys[i].keyId,
        new_public_key: to.publicKeyHex,
        new_key_id: to.keyId,
        effective_at: new Date(now.getTime() - (LINKS - i) * 1000).toISOString(),
        overlap_until: new Date(now.getTime() + 86_400_000).toISOString(),
      },
      keys[i],
      to,
    ),
    seq: i + 1,
    author: 'admin',
  }));
  const current = keys[LINKS].keyId;
  const trusting = [keys[LINKS - 1].keyId, current];

  const perCall = (f) => {
    let sink = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < CALLS; i++) sink += f() ? 1 : 0;
    const ns = Number(process.hrtime.bigint() - t0) / CALLS;
    return sink >= 0 ? ns : ns; // keep the calls alive
  };
  const best = (fs) => {
    const out = Object.fromEntries(Object.keys(fs).map((k) => [k, Infinity]));
    for (let r = 0; r < ROUNDS; r++) for (const [k, f] of Object.entries(fs)) out[k] = Math.min(out[k], f());
    return out;
  };

  const answer = best({
    rotated: () => perCall(() => Object.keys(rotationAnswer(history, current, trusting, now)).length === 0),
    none: () => perCall(() => Object.keys(rotationAnswer([], current, trusting, now)).length === 0),
  });
  const attention = best({
    rotated: () => perCall(() => missedRotation(history, current, trusting, now) === undefined),
    none: () => perCall(() => missedRotation([], current, trusting, now) === undefined),
  });
  const base = { [keys[0].keyId]: keys[0].publicKeyHex };
  const payloadOf = (r) => ({ context: 'vaultmesh center key rotation v1', statement: r.statement });
  const chainRounds = 20;
  const timedChain = (f) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < chainRounds; i++) f();
    return Number(process.hrtime.bigint() - t0) / chainRounds / 1e6;
  };
  const chain = best({
    review: () => timedChain(() => reviewRotations(base, [], history, now).accept.length === LINKS),
    verify: () =>
      timedChain(() => history.every((r) => verifyPayload(payloadOf(r), r.old_signature, r.statement.old_public_key) && verifyPayload(payloadOf(r), r.new_signature, r.statement.new_public_key))),
  });
  if (reviewRotations(base, [], history, now).accept.length !== LINKS) throw new Error('the chain was not accepted');

  return [
    { name: `heartbeat answer, agent trusts the current key, ${LINKS} rotations`, value: round(answer.rotated, 0), unit: 'ns/call', baseline: round(answer.none, 0), ratio: round(answer.rotated / answer.none, 2), note: 'baseline: no rotation history' },
    { name: `attention check per node, ${LINKS} rotations`, value: round(attention.rotated, 0), unit: 'ns/call', baseline: round(attention.none, 0), ratio: round(attention.rotated / attention.none, 2), note: 'baseline: no rotation history' },
    { name: `agent takes a ${LINKS}-link chain`, value: round(chain.review, 2), unit: 'ms', baseline: round(chain.verify, 2), ratio: round(chain.review / chain.verify, 2), note: `baseline: the ${LINKS * 2} Ed25519 verifications alone` },
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const r of await run()) console.log(`${r.name}: ${r.value} ${r.unit}${r.baseline !== undefined ? ` (baseline ${r.baseline}, ratio ${r.ratio})` : ''}`);
}
