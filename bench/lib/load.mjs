/**
 * Load generation with undici: closed-loop (N in flight, as fast as the server answers) or open-loop (requests at
 * scheduled times, latency measured from the scheduled time so a stalled server cannot hide its queueing).
 * Both are bounded by a request count and by wall time.
 */
import { Pool } from 'undici';

async function send(pool, req) {
  const res = await pool.request({ method: req.method, path: req.path, headers: req.headers, body: req.body });
  await res.body.dump();
  return res.statusCode;
}

function tally() {
  return { ok: 0, statuses: {}, errors: 0, firstError: undefined, latencies: [] };
}

function count(t, status, expect) {
  t.statuses[status] = (t.statuses[status] ?? 0) + 1;
  if (status === expect) t.ok++;
}

/**
 * Closed loop: `concurrency` workers send `requests` in order until they run out or `maxMs` passes.
 * Returns throughput of successful (status `expect`) responses.
 */
export async function closedLoop(origin, requests, { connections = 32, concurrency = 64, pipelining = 1, maxMs = 10_000, expect = 200 } = {}) {
  const pool = new Pool(origin, { connections, pipelining, keepAliveTimeout: 30_000 });
  const t = tally();
  let next = 0;
  const t0 = performance.now();
  const deadline = t0 + maxMs;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < requests.length && performance.now() < deadline) {
          const req = requests[next++];
          const s = performance.now();
          try {
            count(t, await send(pool, req), expect);
            t.latencies.push(performance.now() - s);
          } catch (err) {
            t.errors++;
            t.firstError ??= err;
          }
        }
      }),
    );
  } finally {
    await pool.close();
  }
  const secs = (performance.now() - t0) / 1000;
  return { ...t, sent: next, secs, rate: t.ok / secs };
}

/**
 * Open loop: sends `requests[i]` at `t0 + i / rate` seconds, never waiting for answers, until the list or
 * `warmMs + maxMs` runs out; then waits up to `drainMs` for answers in flight. The requests of the first `warmMs` go
 * out on the same schedule and connections but are tallied apart (`warm`): that is where the pool opens its
 * connections, which agents holding keep-alive connections do not pay per request.
 */
export async function openLoop(origin, requests, { rate, connections = 64, maxMs = 20_000, warmMs = 0, drainMs = 10_000, expect = 200 } = {}) {
  const pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
  const t = tally();
  const warm = tally();
  const warmCount = Math.ceil((warmMs * rate) / 1000); // the requests scheduled before warmMs
  const pending = new Set();
  const t0 = performance.now();
  let sent = 0;
  let maxLagMs = 0;
  let lastAnswer = 0;
  try {
    while (sent < requests.length) {
      const at = (sent * 1000) / rate;
      if (at >= warmMs + maxMs) break;
      const due = t0 + at;
      const now = performance.now();
      // Sleep until the next send is due. (Waiting only when it was more than 1 ms away made this loop spin for
      // that last millisecond, starving the event loop that reads the answers: the generator, not the server,
      // was then the bottleneck at ~900 req/s.)
      if (due > now) {
        await new Promise((r) => setTimeout(r, Math.max(1, Math.min(due - now, 50))));
        continue;
      }
      // Send everything that is due now (a timer wakes at most once per ms).
      while (sent < requests.length && (sent * 1000) / rate < warmMs + maxMs && t0 + (sent * 1000) / rate <= performance.now()) {
        const scheduled = t0 + (sent * 1000) / rate;
        const into = sent < warmCount ? warm : t;
        if (into === t) maxLagMs = Math.max(maxLagMs, performance.now() - scheduled);
        const p = send(pool, requests[sent])
          .then((status) => {
            count(into, status, expect);
            lastAnswer = performance.now();
            into.latencies.push(lastAnswer - scheduled);
          })
          .catch((err) => {
            into.errors++;
            into.firstError ??= err;
          })
          .finally(() => pending.delete(p));
        pending.add(p);
        sent++;
      }
    }
    const sendSecs = (performance.now() - t0) / 1000 - Math.min(warmMs, (sent * 1000) / rate) / 1000;
    const measured = Math.max(0, sent - warmCount);
    await Promise.race([Promise.all([...pending]), new Promise((r) => setTimeout(r, drainMs))]);
    return { ...t, warm, sent: measured, unanswered: pending.size, secs: sendSecs, offered: measured / sendSecs, maxLagMs, answerSecs: (lastAnswer - t0) / 1000 };
  } finally {
    await pool.destroy();
  }
}
