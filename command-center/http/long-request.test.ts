import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { longRequest, longRequestKind } from './long-request.js';

/** An app whose global middleware reports what the matched route is marked as, like the timeout does. */
function probe(mount: (app: Hono) => void): Hono {
  const app = new Hono();
  app.use('*', async (c, next) => {
    c.header('x-kind', longRequestKind(c) ?? 'ordinary');
    await next();
  });
  mount(app);
  return app;
}

const kind = async (app: Hono, path: string, method = 'GET') => (await app.request(path, { method })).headers.get('x-kind');

describe('long-request route marker', () => {
  it('is read by a middleware that runs before the route, for the marked route only', async () => {
    const app = probe((a) => {
      a.get('/events', longRequest('stream'), (c) => c.text('s'));
      a.get('/poll', longRequest('long-poll'), (c) => c.text('p'));
      a.post('/events', (c) => c.text('post'));
      a.get('/other', (c) => c.text('o'));
    });
    expect(await kind(app, '/events')).toBe('stream');
    expect(await kind(app, '/poll')).toBe('long-poll');
    expect(await kind(app, '/events', 'POST')).toBe('ordinary');
    expect(await kind(app, '/other')).toBe('ordinary');
    expect(await kind(app, '/nowhere')).toBe('ordinary');
    expect(await (await app.request('/events')).text()).toBe('s'); // the marker passes through
  });

  it('survives mounting, also of a sub-app with its own error handler (which wraps its handlers)', async () => {
    const plain = new Hono();
    plain.get('/commands', longRequest('long-poll'), (c) => c.text('x'));
    const wrapped = new Hono();
    wrapped.get('/stream', longRequest('stream'), (c) => c.text('y'));
    wrapped.onError((_err, c) => c.text('error', 500));
    const app = probe((a) => {
      a.route('/api/agent', plain);
      a.route('/console', wrapped);
    });
    expect(await kind(app, '/api/agent/commands')).toBe('long-poll');
    expect(await kind(app, '/console/stream')).toBe('stream');
  });

  it('a path that looks like a stream is ordinary unless its route says so', async () => {
    const app = probe((a) => a.get('/api/agent/commands', (c) => c.text('x')));
    expect(await kind(app, '/api/agent/commands')).toBe('ordinary');
  });
});
