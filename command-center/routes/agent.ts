/** Agent API: enrollment and signed, durable facts from enrolled nodes. */
import { Hono } from 'hono';
import { enrollRequestSchema, heartbeatSchema } from '../../protocol/agent-api.js';
import { SIGNATURE_HEADERS } from '../../protocol/request-signing.js';
import { VaultMeshError } from '../../protocol/errors.js';
import { keyIdOf } from '../../protocol/keys.js';
import { rememberNonce, requireEnrolledNode, verifyAgentSignature, withCatchUp } from '../auth/agent-auth.js';
import { claimKey, isClaimTaken } from '../store/envelope-store.js';
import { rotationAnswer } from '../keys/agent-answer.js';
import { parseJsonBytes, validationError } from '../http/http-errors.js';
import { decideEnrollment, enrollmentClaim, joinTokenUseClaim } from '../fleet/enrollment.js';
import type { EnvelopeDraft } from '../../protocol/envelope.js';
import type { AppEnv, Services } from '../services.js';
import { registerAgentCommandRoutes } from './agent-commands.js';
import { registerAgentKeyRotationRoute } from './agent-key-rotation.js';
import { scanReportSchema } from '../../protocol/scan.js';
import { witnessHeartbeat } from '../ledger/witnesses.js';

export function agentRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.post('/enroll', async (c) => {
    const services = c.get('services');
    const raw = Buffer.from(await c.req.arrayBuffer());
    const parsed = enrollRequestSchema.safeParse(parseJsonBytes(raw));
    if (!parsed.success) throw validationError(parsed.error);
    const req = parsed.data;
    if (c.req.header(SIGNATURE_HEADERS.node) !== req.node_id) {
      throw new VaultMeshError('MISSING_SIGNATURE', 'enrollment must be signed by the key it enrolls, for the node it names', { status: 401 });
    }
    // Proof of possession: the request is signed by the very key being enrolled.
    await verifyAgentSignature(c, services, req.node_id, req.public_key, raw);
    return services.enrollLock.run(async () => {
      // The join token is checked before the nonce is remembered: without a real token a request takes no memory.
      // A token created on another replica a moment ago is found after one catch-up.
      await withCatchUp(services, ['BAD_JOIN_TOKEN'], () => decideEnrollment(services.state, req, services.now()));
      await rememberNonce(c, services, req.node_id);
      // With replicas, the token use and the node's enrollment are claimed in the same transaction as the envelope:
      // of several replicas admitting the same token use or node id at once, one wins; the others catch up with
      // the log and decide again (the answer is then USED_UP, NODE_EXISTS, or this node's own status on a retry).
      for (let attempt = 1; ; attempt++) {
        // Decided again in the same turn as the claims are made: the claims name the token use and the node state
        // this decision saw (the await above lets the log move on, and a use counted after a stale decision would
        // claim the next use of a token that is already used up).
        const decision = decideEnrollment(services.state, req, services.now());
        if (decision.kind === 'existing') {
          return c.json(enrollResponse(decision.status, services), decision.status === 'approved' ? 200 : 202);
        }
        const token = services.state.joinTokens.get(decision.tokenId)!;
        const existing = services.state.nodes.get(req.node_id);
        // Auto-approve (demos) admits new node ids only: a revoked or rejected node coming back with a new key is
        // an operator's decision, or anyone holding a multi-use token could take over its name.
        const auto = services.config.autoApprove && !existing;
        try {
          await services.submit(
            {
              kind: 'enrollment',
              node_id: req.node_id,
              author: `node:${req.node_id}`,
              body: {
                action: 'request',
                token_id: decision.tokenId,
                hostname: req.hostname,
                os_profile: req.os_profile,
                public_key: req.public_key,
                key_id: keyIdOf(req.public_key),
                agent_version: req.agent_version,
                facts: req.facts,
                ...(auto ? { auto_approved: true } : {}),
              },
            },
            { claims: [{ key: joinTokenUseClaim(token.token_id, token.used + 1) }, { key: enrollmentClaim(req.node_id, existing) }] },
          );
        } catch (err) {
          if (!isClaimTaken(err) || attempt >= 3) throw err;
          await services.syncLog();
          continue;
        }
        const status = auto ? 'approved' : 'pending';
        return c.json(enrollResponse(status, services), auto ? 200 : 202);
      }
    });
  });

  // Registered after /enroll, so enrollment (signed by the key being enrolled) is the only unauthenticated-node route.
  app.use('/*', requireEnrolledNode());

  app.post('/heartbeat', async (c) => {
    const services = c.get('services');
    const parsed = heartbeatSchema.safeParse(parseJsonBytes(c.get('rawBody')));
    if (!parsed.success) throw validationError(parsed.error);
    const hb = parsed.data;
    const nodeId = c.get('nodeId');
    if (hb.node_id !== nodeId) throw new VaultMeshError('NODE_MISMATCH', 'body node_id differs from the signing node', { status: 403 });
    // Built in one fixed shape: an object literal with a conditional spread got a new hidden class (and its
    // descriptor array, both in the old generation) on every request, which made the major GCs behind the open-loop
    // latency spikes (docs/BENCHMARKS.md, "latency tails on two vCPUs").
    const draft: EnvelopeDraft = { kind: 'heartbeat', node_id: nodeId, author: `node:${nodeId}`, body: hb };
    if (hb.id !== undefined) draft.id = hb.id;
    const { envelope, duplicate } = await services.submit(draft);
    // The fleet witnesses the ledgers: cosignatures in, latest checkpoints and consistency proofs out.
    const ledger = await witnessHeartbeat(services, nodeId, hb.witness);
    // Rotation statements the agent lacks (none when it trusts the current key), or a notice that it missed one.
    const rotation = rotationAnswer(services.state.centerKeys?.rotations, services.centerKey.keyId, hb.center_key_ids, services.now());
    return c.json({ ok: true, id: envelope.id, seq: envelope.seq, duplicate, server_time: services.now().toISOString(), center_keys: centerKeys(services), ledger, ...rotation });
  });

  // Scan reports are ledger material: they stay Ed25519-signed per request, and land in sovereign-scans.jsonl.
  app.post('/scan', async (c) => {
    const services = c.get('services');
    const parsed = scanReportSchema.safeParse(parseJsonBytes(c.get('rawBody')));
    if (!parsed.success) throw validationError(parsed.error, 'scan report');
    const report = parsed.data;
    const nodeId = c.get('nodeId');
    if (report.node_id !== nodeId) throw new VaultMeshError('NODE_MISMATCH', 'report node_id differs from the signing node', { status: 403 });
    // Scan ids name ledger leaves (proofs are fetched by id), so one id never covers two reports from different nodes.
    if (report.id !== undefined && services.seenEnvelopeId(`node:${nodeId}`, report.id) === undefined && services.ledgers.scans.indexOf(report.id) !== undefined) {
      throw new VaultMeshError('ID_CONFLICT', `scan id ${report.id} is already in the ledger`, { status: 409 });
    }
    // Across replicas the scan id is claimed with the report, so two nodes cannot take one id on two replicas at once
    // (the node's own retry is recognised first, by its envelope id, and answered as a duplicate).
    const { envelope, duplicate } = await services
      .submit(
        {
          ...(report.id !== undefined ? { id: report.id } : {}),
          kind: 'scan',
          node_id: nodeId,
          author: `node:${nodeId}`,
          body: report,
        },
        report.id !== undefined ? { claims: [{ key: claimKey('scan-id', report.id) }] } : undefined,
      )
      .catch((err: unknown) => {
        if (isClaimTaken(err)) throw new VaultMeshError('ID_CONFLICT', `scan id ${report.id} is already in the ledger`, { status: 409 });
        throw err;
      });
    return c.json({ ok: true, id: envelope.id, seq: envelope.seq, duplicate, server_time: services.now().toISOString() });
  });

  registerAgentCommandRoutes(app);
  registerAgentKeyRotationRoute(app);

  return app;
}

type KeyHolder = Pick<Services, 'centerKey' | 'state' | 'now'>;

/** Handed to approved agents so one without a pinned center key can trust it on first use (it logs that loudly). */
function centerKeys(services: KeyHolder) {
  return [{ public_key: services.centerKey.publicKeyHex, key_id: services.centerKey.keyId }];
}

function enrollResponse(status: string, services: KeyHolder) {
  if (status !== 'approved') return { status, center_keys: [] };
  // A node that enrolls during an overlap may have pinned the old key (VAULTMESH_CC_PUBKEY): it gets the statements.
  return { status, center_keys: centerKeys(services), ...rotationAnswer(services.state.centerKeys?.rotations, services.centerKey.keyId, undefined, services.now()) };
}
