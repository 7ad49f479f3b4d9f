/**
 * A loopback TCP proxy whose target can be changed: the stand-in, in tests, for what follows the database primary in
 * production (Patroni's HAProxy, a virtual IP, a managed service's writer endpoint). `pg` connects to one host, so
 * the center's URL names the proxy and the test re-points it at the promoted standby.
 *
 * `point()` also cuts every open connection, as HAProxy does with `on-marked-down shutdown-sessions`: a client must
 * not keep talking to a server that is no longer the primary. While the target refuses, new connections are accepted
 * and closed at once (the client sees its connection end, as it would against a dead address).
 *
 * `hold()` stalls the path instead: connections stay open but no byte is forwarded either way (a congested or
 * partitioned network), until `release()`.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  /** Send new connections to `port` on 127.0.0.1 and cut the open ones. */
  point(port: number): void;
  /** Stop forwarding in both directions, keeping the connections open. */
  hold(): void;
  /** Forward again, first what was held. */
  release(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let target = targetPort;
  let held = false;
  const open = new Set<Socket>();
  const waiting: Array<() => void> = [];
  const forward = (from: Socket, to: Socket) =>
    from.on('data', (chunk: Buffer) => {
      const send = () => {
        if (!to.destroyed) to.write(chunk);
      };
      if (held) waiting.push(send);
      else send();
    });
  const server: Server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    open.add(client);
    open.add(upstream);
    const cut = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', cut);
    upstream.on('error', cut);
    client.on('close', cut);
    upstream.on('close', cut);
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    point(port) {
      target = port;
      for (const s of open) s.destroy();
      open.clear();
    },
    hold() {
      held = true;
    },
    release() {
      held = false;
      for (const send of waiting.splice(0)) send();
    },
    async close() {
      for (const s of open) s.destroy();
      open.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
