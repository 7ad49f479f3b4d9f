/**
 * `POST /api/agent/rotate-key`: a node replaces its key (protocol/node-key-rotation.ts). The request is signed
 * like every agent request (requireEnrolledNode has checked it and set `signingKeyId`); the body's statement is
 * signed by the old and the new key. The center journals a `node_key` envelope whose overlap end it fixes now, and
 * from that envelope on accepts the new key (fleet/node-keys.ts). One rotation per old key, also across replicas:
 * the rotation claims `node-key/<node>/<old key id>` with its envelope.
 */
import type { Hono } from 'hono';
import { rotateKeyRequestSchema, checkRotation } from '../../protocol/node-key-rotation.js';
import { VaultMeshError } from '../../protocol/errors.js';
import { parseJsonBytes, validationError } from '../http/http-errors.js';
import { claimKey, isClaimTaken } from '../store/envelope-store.js';
import { decideRotation } from '../fleet/node-keys.js';
import type { AppEnv } from '../services.js';

export const nodeKeyClaim = (nodeId: string, oldKeyId: string): string => claimKey('node-key', nodeId, oldKeyId);

export function registerAgentKeyRotationRoute(app: Hono<AppEnv>): void {
  app.post('/rotate-key', async (c) => {
    const services = c.get('services');
    const parsed = rotateKeyRequestSchema.safeParse(parseJsonBytes(c.get('rawBody')));
    if (!parsed.success) throw validationError(parsed.error, 'key rotation');
    const req = parsed.data;
    const nodeId = c.get('nodeId');
    const signer = c.get('signingKeyId');
    // Serialised with enrollments: both replace a node's key, and each decides from the node as it is when it writes.
    return services.enrollLock.run(async () => {
      for (let attempt = 1; ; attempt++) {
        const node = services.state.nodes.get(nodeId);
        if (!node) throw new VaultMeshError('UNKNOWN_NODE', `no node ${nodeId}`, { status: 401 });
        const decision = decideRotation(node, signer, req.statement);
        if (decision.kind === 'done') {
          const r = decision.rotation;
          return c.json({ ok: true, node_id: nodeId, old_key_id: r.key_id, new_key_id: r.replaced_by, rotated: false, seq: r.seq, old_key_valid_until: r.valid_until });
        }
        const check = checkRotation(req, node.public_key);
        if (!check.ok) throw new VaultMeshError('BAD_SIGNATURE', `key rotation refused: ${check.message}`, { status: 401 });
        // Read before submitting: applying the envelope updates this record in place.
        const oldKeyId = node.key_id;
        const oldPublicKey = node.public_key;
        const validUntil = new Date(services.now().getTime() + services.config.nodeKeyOverlapSecs * 1000).toISOString();
        try {
          const { envelope } = await services.submit(
            {
              kind: 'node_key',
              node_id: nodeId,
              author: `node:${nodeId}`,
              body: {
                action: 'rotate',
                old_key_id: oldKeyId,
                old_public_key: oldPublicKey,
                new_key_id: req.statement.new_key_id,
                new_public_key: req.statement.new_public_key,
                statement: req.statement,
                new_key_signature: req.new_key_signature,
                old_key_signature: req.old_key_signature,
                old_key_valid_until: validUntil,
              },
            },
            { claims: [{ key: nodeKeyClaim(nodeId, oldKeyId) }] },
          );
          return c.json({ ok: true, node_id: nodeId, old_key_id: oldKeyId, new_key_id: req.statement.new_key_id, rotated: true, seq: envelope.seq, old_key_valid_until: validUntil });
        } catch (err) {
          // Another replica journaled a rotation of this key first: catch up and decide again (a retry of the same
          // rotation is then `done`; a different one a conflict).
          if (!isClaimTaken(err) || attempt >= 3) throw err;
          await services.syncLog();
        }
      }
    });
  });
}
