import { describe, expect, it } from 'vitest';
import { resolveTransport, type ApiOptions } from './api-client.js';

const SOCK = 'state/admin.sock';
const URL = 'https://cc.example.com';

describe('resolveTransport', () => {
  // [case, options, environment, is <state-dir>/admin.sock usable, expected]
  const CASES: Array<[string, ApiOptions, NodeJS.ProcessEnv, boolean, unknown]> = [
    ['nothing given, no socket: the default URL', {}, {}, false, { kind: 'tcp', baseUrl: 'http://127.0.0.1:8088' }],
    ['nothing given, socket under ./state', {}, {}, true, { kind: 'socket', path: SOCK }],
    ['socket under --state-dir', { stateDir: '/var/lib/vaultmesh-cc' }, {}, true, { kind: 'socket', path: '/var/lib/vaultmesh-cc/admin.sock' }],
    ['socket under VAULTMESH_STATE_DIR', {}, { VAULTMESH_STATE_DIR: '/srv/cc' }, true, { kind: 'socket', path: '/srv/cc/admin.sock' }],
    ['--cc-url wins over a socket found', { ccUrl: URL }, {}, true, { kind: 'tcp', baseUrl: URL }],
    ['VAULTMESH_CC_URL wins over a socket found', {}, { VAULTMESH_CC_URL: URL }, true, { kind: 'tcp', baseUrl: URL }],
    ['--admin-socket', { adminSocket: '/x.sock' }, { VAULTMESH_CC_URL: URL }, false, { kind: 'socket', path: '/x.sock' }],
    ['VAULTMESH_ADMIN_SOCKET', {}, { VAULTMESH_ADMIN_SOCKET: '/x.sock' }, false, { kind: 'socket', path: '/x.sock' }],
    ['--cc-url wins over VAULTMESH_ADMIN_SOCKET', { ccUrl: URL }, { VAULTMESH_ADMIN_SOCKET: '/x.sock' }, true, { kind: 'tcp', baseUrl: URL }],
    ['--admin-socket-off', { adminSocketOff: true }, {}, true, { kind: 'tcp', baseUrl: 'http://127.0.0.1:8088' }],
    ['VAULTMESH_ADMIN_SOCKET_OFF', {}, { VAULTMESH_ADMIN_SOCKET_OFF: 'yes', VAULTMESH_ADMIN_SOCKET: '/x.sock' }, true, { kind: 'tcp', baseUrl: 'http://127.0.0.1:8088' }],
    ['VAULTMESH_ADMIN_SOCKET_OFF=0 leaves it on', {}, { VAULTMESH_ADMIN_SOCKET_OFF: '0' }, true, { kind: 'socket', path: SOCK }],
  ];
  it.each(CASES)('%s', (_name, opts, env, usable, expected) => {
    expect(resolveTransport(opts, env, () => usable)).toEqual(expected);
  });

  it.each([
    [{ adminSocket: '/x.sock', ccUrl: URL }, /--cc-url or --admin-socket/],
    [{ adminSocket: '/x.sock', adminSocketOff: true }, /--admin-socket or --admin-socket-off/],
  ])('refuses %j as a usage error', (opts, message) => {
    expect(() => resolveTransport(opts, {}, () => true)).toThrow(message);
  });
});
