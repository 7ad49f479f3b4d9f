// Mission console glue (served as a file: the CSP allows no inline script). Shows a banner while the live stream
// is down; htmx's SSE extension does the reconnecting and the server re-sends full state on every connect.
(() => {
  'use strict';
  const banner = () => document.getElementById('stream-banner');
  const root = document.documentElement;
  const setLive = (live) => {
    const b = banner();
    if (!b) return;
    if (!live && b.hidden) root.dataset.sseDisconnects = String(Number(root.dataset.sseDisconnects || 0) + 1);
    b.hidden = live;
    root.dataset.sse = live ? 'live' : 'down';
  };
  document.addEventListener('htmx:sse:error', () => setLive(false));
  document.addEventListener('htmx:sse:close', () => setLive(false));
  document.addEventListener('htmx:sse:before:connection', (e) => {
    // Fired before every (re)connect attempt; attempt > 0 means the previous stream ended.
    if (e.detail && e.detail.connection && e.detail.connection.attempt > 0) setLive(false);
  });
  // The first message after a (re)connect is the full-state fragment: only then is the page current again.
  document.addEventListener('htmx:sse:after:message', () => setLive(true));
  // A posted note clears its form; the note itself arrives through the stream like everyone else's.
  document.addEventListener('htmx:after:request', (e) => {
    const form = e.target instanceof Element ? e.target.closest('#note-form') : null;
    const status = e.detail && e.detail.ctx && e.detail.ctx.response ? e.detail.ctx.response.status : 0;
    if (form && status >= 200 && status < 300) form.reset();
  });
  // Submitting a filter form when a select changes saves a click; typing still needs Enter.
  document.addEventListener('change', (e) => {
    const t = e.target;
    if (t instanceof HTMLSelectElement && t.form && t.form.classList.contains('filter')) t.form.requestSubmit();
  });
})();
