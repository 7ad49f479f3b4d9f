/** The scope names alone, without their zod schema: the CLI's help text lists them without loading zod. */
export const SCOPES = ['admin', 'events:read', 'events:write', 'nodes:read', 'nodes:approve', 'commands:write', 'metrics:read', 'ledger:read'] as const;
