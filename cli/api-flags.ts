/**
 * The transport flags of every command that calls the API, in a module of their own so the command table
 * (cli/command-table.ts) can list them without loading the HTTP client.
 */
/** The flags that choose the transport, shared by every command that calls the API (`.option(...ADMIN_SOCKET_OPTION)`). */
export const ADMIN_SOCKET_OPTION = ['--admin-socket <path>', "The center's admin socket (VAULTMESH_ADMIN_SOCKET; default <state-dir>/admin.sock when it exists and no --cc-url is given)"] as const;
export const ADMIN_SOCKET_OFF_OPTION = ['--admin-socket-off', 'Never use the admin socket; go over TCP (VAULTMESH_ADMIN_SOCKET_OFF)'] as const;
