/**
 * Ledger API: the current signed roots, and inclusion proofs of scans as self-contained bundles in the same format
 * as `vaultmesh ledger prove`, so `vaultmesh ledger check` verifies what the API hands out.
 */
import { Hono } from 'hono';
import { idSchema } from '../../protocol/envelope.js';
import { VaultMeshError } from '../../protocol/errors.js';
import { validationError } from '../http/http-errors.js';
import { requireScope } from '../auth/require-operator.js';
import type { Ledger } from '../ledger/ledger.js';
import { buildProofBundle } from '../../protocol/ledger-files.js';
import type { AppEnv } from '../services.js';

function rootOf(ledger: Ledger) {
  return { ...ledger.root(), head: ledger.latestHead() ?? null };
}

export function ledgerRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get('/ledger/root', requireScope('nodes:read'), (c) => {
    const ledgers = c.get('services').ledgers;
    // Top level is the scan ledger, the same shape as `vaultmesh ledger root --json`.
    return c.json({ ...rootOf(ledgers.scans), commands: rootOf(ledgers.commands) });
  });

  app.get('/ledger/proof/:id', requireScope('nodes:read'), async (c) => {
    const ledgers = c.get('services').ledgers;
    const id = idSchema.safeParse(c.req.param('id'));
    if (!id.success) throw validationError(id.error, 'scan id');
    const which = c.req.query('log') === 'commands' ? 'commands' : 'scans';
    const ledger = ledgers[which];
    const index = ledger.indexOf(id.data);
    if (index === undefined) throw new VaultMeshError('NOT_FOUND', `no ${which === 'scans' ? 'scan' : 'command record'} with id ${id.data}`, { status: 404 });
    // A scan newer than the last signed head gets a head now rather than a "try again later".
    if ((ledger.latestHead()?.tree_size ?? 0) <= index) await ledger.publishHead();
    const proof = ledger.inclusionProofFor(index);
    return c.json(
      buildProofBundle({
        log: ledger.files.journal.split('/').pop()!,
        leafLine: await ledger.leafLine(index),
        leafIndex: proof.leaf_index,
        auditPath: proof.audit_path,
        head: proof.head,
        publicKey: proof.public_key,
      }),
    );
  });

  return app;
}
