/** The status pills of a node, as the operator API reports them (`GET /api/nodes`, `vaultmesh_nodes{status}`). */
export const NODE_STATUSES = ['ok', 'attn', 'crit', 'pending', 'offline', 'rejected', 'revoked'] as const;
export type NodeStatus = (typeof NODE_STATUSES)[number];
