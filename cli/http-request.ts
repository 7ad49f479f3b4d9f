/**
 * One HTTP request for the CLI's API client, on node:http (node:https for https:// URLs, loaded only then), over
 * TCP or a Unix socket. node:http is part of Node's start-up snapshot; the undici package the client used before
 * took longer to load than the rest of a `vaultmesh nodes list`. Timeouts keep undici's codes and meaning:
 * UND_ERR_HEADERS_TIMEOUT when no response head arrives in time, UND_ERR_BODY_TIMEOUT when the body stalls that long.
 */
import { request as httpRequest, type IncomingHttpHeaders, type RequestOptions } from 'node:http';

export interface HttpAnswer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** The body, decoded as UTF-8. */
  text: string;
}

export interface HttpSendOptions {
  method: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  /** Connect to this Unix socket instead of the URL's host and port. */
  socketPath?: string;
}

const timeoutError = (code: 'UND_ERR_HEADERS_TIMEOUT' | 'UND_ERR_BODY_TIMEOUT', ms: number): Error =>
  Object.assign(new Error(`${code === 'UND_ERR_HEADERS_TIMEOUT' ? 'no response' : 'the response stalled'} within ${ms} ms`), { code });

export async function httpSend(url: string, opts: HttpSendOptions): Promise<HttpAnswer> {
  const u = new URL(url);
  const request = u.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
  const headers = { ...opts.headers, ...(opts.body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.body)) } : {}) };
  const options: RequestOptions = opts.socketPath
    ? { socketPath: opts.socketPath, path: `${u.pathname}${u.search}`, method: opts.method, headers: { host: u.host, ...headers } }
    : { method: opts.method, headers };
  return new Promise<HttpAnswer>((resolve, reject) => {
    const req = opts.socketPath ? request(options) : request(u, options);
    let timer: NodeJS.Timeout | undefined = setTimeout(() => req.destroy(timeoutError('UND_ERR_HEADERS_TIMEOUT', opts.timeoutMs)), opts.timeoutMs);
    const stop = (): void => {
      clearTimeout(timer);
      timer = undefined;
    };
    req.on('error', (err) => {
      stop();
      reject(err);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => res.destroy(timeoutError('UND_ERR_BODY_TIMEOUT', opts.timeoutMs)), opts.timeoutMs);
      };
      arm();
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        arm();
      });
      res.on('error', (err) => {
        stop();
        reject(err);
      });
      res.on('end', () => {
        stop();
        resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
      });
      // Aborted mid-body without an error event (the peer closed the connection).
      res.on('close', () => {
        if (!res.complete && timer !== undefined) {
          stop();
          reject(Object.assign(new Error('the connection closed before the response was complete'), { code: 'ECONNRESET' }));
        }
      });
    });
    req.end(opts.body);
  });
}
