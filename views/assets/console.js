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
  // A posted note clears its form; the note itself arrives through the stream like everyone else's. A sent command
  // clears its confirmation, so sending it again needs a new one; so does a key rotation.
  document.addEventListener('htmx:after:request', (e) => {
    const el = e.target instanceof Element ? e.target : null;
    const status = e.detail && e.detail.ctx && e.detail.ctx.response ? e.detail.ctx.response.status : 0;
    // Maintenance forms say why a request was refused (the window ended meanwhile, a missing reason …).
    const mwError = document.getElementById('mw-error');
    if (el && mwError && (el.closest('#maintenance-form') || el.closest('.maintenance'))) {
      mwError.textContent = status >= 400 ? `Not done (HTTP ${status}): ${errorText(e.detail.ctx)}` : '';
      mwError.hidden = status < 400;
    }
    if (!el || status < 200 || status >= 300) return;
    const mw = el.closest('#maintenance-form');
    if (mw) mw.reset();
    const note = el.closest('#note-form');
    if (note) note.reset();
    const confirm = el.closest('#cmd-form') ? document.getElementById('cmd-confirm') : el.closest('#key-form') ? document.getElementById('key-confirm') : null;
    if (confirm) confirm.checked = false;
  });
  const errorText = (ctx) => {
    try {
      const body = ctx && typeof ctx.text === 'string' ? JSON.parse(ctx.text) : undefined;
      return body && body.error && body.error.message ? body.error.message : 'refused';
    } catch {
      return 'refused';
    }
  };
  // The command form shows only the selected action's arguments; the others are disabled, so they are neither
  // validated nor sent. Without this script every action's inputs show and the server picks the right ones.
  const showArgs = () => {
    const action = document.getElementById('cmd-action');
    if (!(action instanceof HTMLSelectElement)) return;
    for (const fs of document.querySelectorAll('#cmd-form fieldset.cmd-args')) {
      const on = fs.getAttribute('data-action') === action.value;
      fs.hidden = !on;
      fs.disabled = !on;
    }
  };
  document.addEventListener('change', (e) => {
    if (e.target instanceof HTMLSelectElement && e.target.id === 'cmd-action') showArgs();
  });
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', showArgs);
  else showArgs();
  // Submitting a filter form when a select changes saves a click; typing still needs Enter.
  document.addEventListener('change', (e) => {
    const t = e.target;
    if (t instanceof HTMLSelectElement && t.form && t.form.classList.contains('filter')) t.form.requestSubmit();
  });
})();
