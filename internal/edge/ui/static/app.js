// The Settings page (API.md §8). Plain JavaScript, no framework and no
// third-party code: the page is small, and a strict CSP with nothing to
// vendor is the simplest thing to keep secure. It uses only the public HTTP
// API (docs/openapi.yaml) with the caller's bearer token; the server
// enforces every right, the role checks here only hide controls that would
// be refused anyway.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);

  const READ = 'byok.read';
  const ADMIN = 'byok.admin';
  const OPERATOR = 'backup.operator';
  const PLATFORM = 'platform.operator';
  // sessionStorage, not localStorage: the token dies with the tab.
  const TOKEN_KEY = 'byokBackup.token';
  const FKEY_KEY = 'byokBackup.functionKey';
  const POLL_MS = 1500;
  const PAGE_SIZE = 20;

  // Client-side checks mirror the server's (internal/keywrap/names.go and
  // API.md §2) so a typo is caught before a round trip; the server still
  // checks everything.
  const FIELDS = [
    { id: 'f-vault', name: 'keyVaultName', re: /^[A-Za-z](?!.*--)[A-Za-z0-9-]{1,22}[A-Za-z0-9]$/,
      msg: 'Use 3 to 24 letters, digits and single hyphens, starting with a letter and ending with a letter or digit.' },
    { id: 'f-key', name: 'keyName', re: /^[A-Za-z0-9-]{1,127}$/,
      msg: 'Use 1 to 127 letters, digits and hyphens.' },
    { id: 'f-entra', name: 'tenantId', re: /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/,
      msg: 'Use the directory (tenant) GUID, like 18a5c4b2-84a8-4acb-8db8-fc7073207415.' },
    { id: 'f-version', name: 'keyVersion', re: /^[0-9A-Fa-f]{32}$/, optional: true,
      msg: 'Use the 32 hex digits at the end of the key id, or leave it empty to follow the current version.' },
  ];
  const TENANT_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
  // The validation checks in the order the server runs them (keycheck.Names),
  // so checks missing from an answer can still be listed as not checked.
  const CHECK_NAMES = ['vaultReachable', 'authenticated', 'keyFound', 'keyOwnership', 'keyEnabled', 'keyType', 'keyOperations', 'wrapRoundTrip'];
  const CHECK_LABELS = {
    vaultReachable: 'Key Vault reachable', authenticated: 'Signed in to your directory', keyFound: 'Key found',
    keyOwnership: 'Key tagged for this tenant', keyEnabled: 'Key enabled', keyType: 'Key type (RSA, 2048 bits or more)',
    keyOperations: 'wrapKey and unwrapKey allowed', wrapRoundTrip: 'Wrap and unwrap round trip',
  };

  const s = {
    token: '', functionKey: '', tenant: '', roles: new Set(), easyAuth: false,
    next: null, includeDeleted: false,
    backups: new Map(), // backupId → last known backup, for the per-item actions
    restoreFor: null,   // the backup the restore form is about
    polls: new Map(),   // key → timer id, so one thing is never polled twice
  };

  // ---- API ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message, body) {
      super(message);
      this.status = status;
      this.code = code;
      this.body = body;
    }
  }

  // api calls the service and returns {status, data}; any non-2xx answer
  // becomes an ApiError carrying API.md's error.message, which is
  // written for people and safe to show.
  async function api(method, path, body) {
    const headers = { Accept: 'application/json', Authorization: 'Bearer ' + s.token };
    // authLevel "function" routes need a function key when the host enforces it.
    if (s.functionKey) headers['x-functions-key'] = s.functionKey;
    const init = { method, headers, cache: 'no-store', credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'Network', 'The service could not be reached. Check your connection and try again.');
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!res.ok) {
      const err = data && data.error;
      let msg = err && err.message;
      if (!msg) {
        msg = res.status === 404
          ? 'The service does not offer this yet (404 without an explanation).'
          : 'The service answered ' + res.status + ' without an explanation.';
      }
      if (res.status === 429 && res.headers.get('Retry-After')) {
        msg += ' Try again in ' + res.headers.get('Retry-After') + ' s.';
      }
      throw new ApiError(res.status, (err && err.code) || '', msg, data);
    }
    return { status: res.status, data };
  }

  const tpath = (rest) => '/api/tenants/' + encodeURIComponent(s.tenant) + rest;

  // ---- Feedback ------------------------------------------------------------

  function showError(err) {
    const box = $('error');
    const msg = err instanceof ApiError || (err && err.message) ? err.message : String(err);
    box.textContent = err && err.code ? msg + ' (' + err.code + ')' : msg;
    box.hidden = false;
    if (err && err.status === 401) offerSignIn('Your sign-in was refused or has expired: sign in again.');
  }

  function clearError() {
    $('error').hidden = true;
    $('error').textContent = '';
  }

  // announce puts a short outcome in the polite live region for screen readers.
  function announce(msg) {
    $('status').textContent = msg;
  }

  // run wraps a user action: the control is disabled while it runs (no double
  // submits) and any failure is shown, never swallowed.
  async function run(control, fn) {
    clearError();
    if (control) control.disabled = true;
    try {
      await fn();
    } catch (e) {
      showError(e);
    } finally {
      if (control) control.disabled = false;
    }
  }

  // ---- Formatting -----------------------------------------------------------

  function when(t) {
    if (!t) return '—';
    const d = new Date(t);
    return isNaN(d) ? String(t) : d.toLocaleString();
  }

  function size(n) {
    if (n === null || n === undefined) return '—';
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let v = n;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : String(v)) + ' ' + units[i];
  }

  const count = (n) => (typeof n === 'number' ? n.toLocaleString() : '0');

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text; // textContent only: API text is never HTML
    if (cls) e.className = cls;
    return e;
  }

  function badge(node, word, cls) {
    node.textContent = word;
    node.className = 'badge ' + cls;
  }

  // ---- Sign-in ----------------------------------------------------------------

  // claims decodes a JWT's payload without verifying it: the page only needs
  // the tenant and roles to choose what to show; the server verifies.
  function claims(token) {
    const part = (token || '').split('.')[1];
    if (!part) return null;
    try {
      const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
      const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
      const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
      const c = JSON.parse(new TextDecoder().decode(bytes));
      return c && typeof c === 'object' ? c : null;
    } catch (e) {
      return null;
    }
  }

  // The roles claim may be an array (Entra app roles) or a space-separated
  // string (OAuth scope style); both are accepted.
  function rolesOf(c) {
    const r = c && c.roles;
    if (Array.isArray(r)) return r.filter((x) => typeof x === 'string');
    if (typeof r === 'string') return r.split(/\s+/).filter(Boolean);
    return [];
  }

  function can(role) {
    const r = s.roles;
    if (r.has(PLATFORM) || r.has(role)) return true;
    return role === READ && (r.has(ADMIN) || r.has(OPERATOR));
  }

  // applyRoles hides write controls the caller's roles don't grant, rather
  // than letting them fail with 403, and makes their fields read-only
  // (a disabled fieldset still shows the values).
  function applyRoles(root) {
    root.querySelectorAll('[data-needs]').forEach((node) => {
      node.hidden = !can(node.dataset.needs);
    });
    root.querySelectorAll('[data-edit]').forEach((node) => {
      node.disabled = !can(node.dataset.edit);
    });
  }

  // With App Service Authentication on, /.auth/me returns the signed-in
  // user's tokens. The id token's audience is the app's client id, the usual
  // AUTH_AUDIENCE there; the access token is the fallback.
  async function tokenFromEasyAuth() {
    try {
      const res = await fetch('/.auth/me', { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });
      if (!res.ok) return '';
      const list = await res.json();
      const p = Array.isArray(list) ? list[0] : null;
      return (p && (p.id_token || p.access_token)) || '';
    } catch (e) {
      return ''; // not on App Service, or authentication is off
    }
  }

  // The local stack prints a link ending in #token=…; the fragment never
  // reaches a server, and it is removed at once so the token stays out of
  // the history, bookmarks and screenshots.
  function fromFragment() {
    const h = new URLSearchParams(location.hash.replace(/^#/, ''));
    const out = { token: h.get('token') || '', functionKey: h.get('code') || '' };
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    return out;
  }

  function offerSignIn(message) {
    $('app').hidden = true;
    $('signin').hidden = false;
    $('sign-out').hidden = true;
    if (message) announce(message);
    $('signin-token').focus();
  }

  // signIn adopts a token: tenant from ?tenant=, the sign-in box, or the
  // token's tenant claim, in that order.
  function signIn(token, tenantHint) {
    const c = claims(token);
    if (!c) throw new Error('That is not a token the page can read: paste the whole JWT (three parts separated by dots).');
    if (typeof c.exp === 'number' && c.exp * 1000 < Date.now()) throw new Error('That token has expired: get a new one.');
    const q = new URLSearchParams(location.search).get('tenant');
    const tenant = q || tenantHint || (typeof c.tenant === 'string' ? c.tenant : '');
    if (!TENANT_RE.test(tenant)) {
      throw new Error(tenant ? '"' + tenant + '" is not a tenant id: use lower-case letters, digits and hyphens.'
        : 'The token names no tenant: enter the tenant to manage.');
    }
    s.token = token;
    s.tenant = tenant;
    s.roles = new Set(rolesOf(c));
    if (!s.easyAuth) {
      sessionStorage.setItem(TOKEN_KEY, token);
      if (s.functionKey) sessionStorage.setItem(FKEY_KEY, s.functionKey);
    }
    $('tenant-label').textContent = '— ' + tenant;
    const who = c.name || c.preferred_username || c.sub || 'signed in';
    $('who').textContent = who + ' · roles: ' + (s.roles.size ? [...s.roles].join(', ') : 'none');
    $('signin').hidden = true;
    $('app').hidden = false;
    $('sign-out').hidden = false;
    applyRoles(document);
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(FKEY_KEY);
    s.polls.forEach((t) => clearTimeout(t));
    s.polls.clear();
    if (s.easyAuth) {
      location.assign('/.auth/logout');
      return;
    }
    s.token = '';
    s.roles = new Set();
    offerSignIn('Signed out.');
  }

  // ---- Polling -----------------------------------------------------------------

  // poll fetches path every POLL_MS until done(data) says it ended, calling
  // render each time. A failed poll stops and shows its error.
  function poll(key, path, render, done) {
    clearTimeout(s.polls.get(key));
    const tick = async () => {
      try {
        const { data } = await api('GET', path);
        render(data);
        if (done(data)) {
          s.polls.delete(key);
          return;
        }
        s.polls.set(key, setTimeout(tick, POLL_MS));
      } catch (e) {
        s.polls.delete(key);
        showError(e);
      }
    };
    tick();
  }

  function progressBar(value, max, label) {
    const p = document.createElement('progress');
    p.setAttribute('aria-label', label);
    if (max > 0) {
      p.max = max;
      p.value = Math.min(value, max);
    } // no max: an indeterminate bar
    return p;
  }

  // ---- BYOK ----------------------------------------------------------------------

  async function loadByok() {
    const { data } = await api('GET', tpath('/byok'));
    renderByok(data, true);
  }

  function renderByok(st, fillForm) {
    const state = st.state || 'disabled';
    badge($('byok-state'), state, 's-' + state);
    $('byok-key').textContent = st.keyId || (st.keyVaultName ? st.keyVaultName + ' / ' + st.keyName : 'none (the platform key wraps backups)');
    if (st.keyType) $('byok-key').textContent += ' (' + st.keyType + (st.keySize ? ' ' + st.keySize : '') + ')';
    const lc = st.lastCheck;
    $('byok-lastcheck').textContent = lc
      ? when(lc.at) + ': ' + (lc.ok ? 'passed' : 'failed' + (lc.code ? ' (' + lc.code + ')' : '') + (lc.message ? ': ' + lc.message : ''))
      : '—';
    $('byok-degraded').textContent = st.degradedSince ? when(st.degradedSince) : '—';
    $('app-id').textContent = st.applicationId || '—';
    $('tag-name').textContent = st.ownership ? st.ownership.tagName : 'no tag needed';
    $('tag-value').textContent = st.ownership ? st.ownership.tagValue : '—';
    $('byok-disable').disabled = state === 'disabled';
    $('rw-to').value = state === 'active' ? 'customer' : 'platform';

    // Only when loading: a person's half-typed edits are never overwritten.
    if (fillForm && st.keyVaultName) {
      $('f-vault').value = st.keyVaultName;
      $('f-key').value = st.keyName || '';
      $('f-entra').value = st.tenantId || '';
      $('f-version').value = st.keyVersion || '';
      $('f-fallback').checked = st.fallbackToPlatformKey !== false;
    }

    // "backups" arrives with the re-wrap feature (§7); older servers omit it.
    const b = st.backups;
    $('wraps').textContent = b
      ? count(b.customer) + ' completed backup(s) wrapped with your key' +
        (b.olderCustomerKeys ? ' (' + count(b.olderCustomerKeys) + ' of them with an older key or version)' : '') +
        ', ' + count(b.platform) + ' with the platform key.'
      : 'Not reported by the service.';
  }

  // readForm checks every field like the server does, marks the bad ones
  // and moves focus to the first; it returns the request body or null.
  function readForm() {
    const body = {};
    let first = null;
    for (const f of FIELDS) {
      const input = $(f.id);
      const v = input.value.trim();
      const bad = v === '' ? !f.optional : !f.re.test(v);
      input.setAttribute('aria-invalid', bad ? 'true' : 'false');
      const errNode = $(f.id + '-err');
      errNode.textContent = bad ? (v === '' ? 'Required. ' : '') + f.msg : '';
      errNode.hidden = !bad;
      if (bad && !first) first = input;
      if (v !== '') body[f.name] = v;
    }
    body.fallbackToPlatformKey = $('f-fallback').checked;
    if (first) {
      first.focus();
      announce('Some fields need a fix before the key can be checked.');
      return null;
    }
    return body;
  }

  // renderChecks lists every check as passed, failed with its detail, or not
  // checked (the server reports checks after a failure with ok=false and a
  // detail starting "not checked").
  function renderChecks(checks) {
    const list = $('checks');
    list.replaceChildren();
    const byName = new Map((checks || []).map((c) => [c.name, c]));
    const names = CHECK_NAMES.concat((checks || []).map((c) => c.name).filter((n) => !CHECK_NAMES.includes(n)));
    for (const name of names) {
      const c = byName.get(name);
      const label = CHECK_LABELS[name] || name;
      let cls;
      let text;
      if (!c || (!c.ok && /^not checked/i.test(c.detail || ''))) {
        cls = 'skipped';
        text = label + ': not checked';
      } else if (c.ok) {
        cls = 'ok';
        text = label + ': passed' + (c.detail ? ' (' + c.detail + ')' : '');
      } else {
        cls = 'failed';
        text = label + ': failed' + (c.detail ? ': ' + c.detail : '');
      }
      list.append(el('li', text, cls));
    }
    $('checks-box').hidden = false;
  }

  async function validateKey(button) {
    const body = readForm();
    if (!body) return;
    await run(button, async () => {
      announce('Checking the key…');
      const { data } = await api('POST', tpath('/byok/validate'), body);
      renderChecks(data.checks);
      announce(data.ok ? 'The key passed every check.' : 'The key failed a check: see the list.');
    });
  }

  async function enableByok(button) {
    const body = readForm();
    if (!body) return;
    await run(button, async () => {
      announce('Checking the key and enabling BYOK…');
      try {
        const { data } = await api('PUT', tpath('/byok'), body);
        renderByok(data, true);
        renderChecks(CHECK_NAMES.map((name) => ({ name, ok: true, detail: '' })));
        announce('BYOK is enabled: new backups are wrapped with your key.');
      } catch (e) {
        // A 422 carries the checks: show where it failed, then the message.
        if (e.body && Array.isArray(e.body.checks)) renderChecks(e.body.checks);
        throw e;
      }
    });
  }

  async function disableByok(button) {
    if (!confirm('Turn BYOK off? New backups will be wrapped with the platform key; existing backups keep their keys.')) return;
    await run(button, async () => {
      const { data } = await api('DELETE', tpath('/byok'));
      renderByok(data, false);
      announce('BYOK is disabled.');
    });
    // run re-enabled the button; there is nothing left to disable.
    button.disabled = $('byok-state').textContent === 'disabled';
  }

  async function copyField(button) {
    const text = $(button.dataset.copy).textContent;
    try {
      await navigator.clipboard.writeText(text);
      announce('Copied ' + text + '.');
    } catch (e) {
      // Clipboard needs a secure context or permission: select the text so
      // the person can copy it by hand.
      const range = document.createRange();
      range.selectNodeContents($(button.dataset.copy));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      announce('Selected ' + text + ': press Ctrl+C to copy.');
    }
  }

  // ---- Re-wrap (§7) -------------------------------------------------------------

  async function startRewrap(form) {
    const to = $('rw-to').value;
    const body = { to, includePlatformBackups: $('rw-platform').checked, dryRun: $('rw-dry').checked };
    if (!body.dryRun && !confirm('Re-wrap the backups with ' + (to === 'customer' ? 'your key' : 'the platform key') + '?')) return;
    await run(form.querySelector('button[type=submit]'), async () => {
      const { data } = await api('POST', tpath('/byok/rewraps'), body);
      announce('Re-wrap started.');
      poll('rewrap', tpath('/byok/rewraps/' + encodeURIComponent(data.rewrapId)), renderRewrap, ended);
    });
  }

  const ended = (job) => job.state === 'succeeded' || job.state === 'failed';

  function renderRewrap(rw) {
    const box = $('rewrap-progress');
    const p = rw.progress || {};
    box.replaceChildren(el('h3', 'Re-wrap ' + (rw.dryRun ? '(dry run) ' : '') + 'to ' + (rw.to || 'customer') + ': ' + rw.state));
    box.append(progressBar((p.done || 0) + (p.skipped || 0) + (p.failed || 0), p.total || 0, 'Re-wrap progress'));
    box.append(el('p', count(p.done) + ' re-wrapped, ' + count(p.skipped) + ' skipped, ' + count(p.failed) + ' failed' +
      (p.total ? ' of ' + count(p.total) : '') + '.'));
    if (Array.isArray(rw.failures) && rw.failures.length) {
      const ul = el('ul');
      rw.failures.forEach((f) => ul.append(el('li', f.backupId + ': ' + f.message + (f.code ? ' (' + f.code + ')' : ''))));
      box.append(ul);
    }
    if (rw.error) box.append(el('p', rw.error.message + ' (' + rw.error.code + ')', 'field-error'));
    box.hidden = false;
    if (ended(rw)) {
      announce('Re-wrap ' + rw.state + '.');
      if (rw.state === 'succeeded') refreshAfterChange();
    }
  }

  // ---- Backups -------------------------------------------------------------------

  async function loadBackups(append) {
    const q = new URLSearchParams({ maxResults: String(PAGE_SIZE) });
    if (append && s.next) q.set('continuationToken', s.next);
    if (s.includeDeleted) q.set('include', 'deleted');
    const { data } = await api('GET', tpath('/backups?' + q.toString()));
    const list = $('backup-list');
    if (!append) {
      list.replaceChildren();
      s.backups.clear();
    }
    for (const b of data.backups || []) {
      list.append(renderBackup(b));
      watchBackup(b);
    }
    s.next = data.continuationToken || null;
    $('backups-more').hidden = !s.next;
    $('backups-empty').hidden = list.children.length > 0;
  }

  const active = (b) => b.status === 'queued' || b.status === 'running';

  // A queued or running backup is polled so its progress and end show.
  function watchBackup(b) {
    if (!active(b)) return;
    poll('backup:' + b.backupId, tpath('/backups/' + encodeURIComponent(b.backupId)), replaceBackup, (x) => !active(x));
  }

  function replaceBackup(b) {
    const old = document.querySelector('li.backup[data-id="' + CSS.escape(b.backupId) + '"]');
    const hide = !s.includeDeleted && (b.status === 'deleted' || b.status === 'purged');
    if (old && hide) {
      old.remove();
      s.backups.delete(b.backupId);
    } else if (old) {
      old.replaceWith(renderBackup(b));
    }
  }

  function renderBackup(b) {
    s.backups.set(b.backupId, b);
    const li = $('backup-item').content.firstElementChild.cloneNode(true);
    li.dataset.id = b.backupId;
    badge(li.querySelector('.b-status'), b.status, 's-' + b.status);
    const key = li.querySelector('.b-key');
    if (b.keySource) badge(key, b.keySource === 'customer' ? 'your key' : 'platform key', 'k-' + b.keySource);
    else key.hidden = true;
    if (b.keyId) key.title = b.keyId;
    const t = b.completedAt || b.startedAt || b.requestedAt;
    const time = li.querySelector('.b-time');
    time.textContent = (b.reason === 'manual' ? 'Manual, ' : 'Scheduled, ') + when(t);
    if (t) time.dateTime = t;
    if (b.fallbackReason) {
      const fb = li.querySelector('.b-fallback');
      fb.textContent = 'The platform key was used instead of yours: ' + b.fallbackReason.message + ' (' + b.fallbackReason.code + ')';
      fb.hidden = false;
    }
    if (b.error) {
      const er = li.querySelector('.b-error');
      er.textContent = 'Failed: ' + b.error.message + ' (' + b.error.code + ')';
      er.hidden = false;
    }
    const sizes = li.querySelector('.b-sizes');
    if (active(b) && b.progress) {
      // Issue 14 point 6: running backups report what they have read so far;
      // totalBytes (the files' total) is null until the listing has ended.
      const p = b.progress;
      const total = p.totalBytes || 0;
      sizes.textContent = 'So far: ' + count(p.records) + ' records, ' + count(p.files) + ' files, ' + size(p.bytes) +
        (total ? ' of ' + size(total) : '');
      sizes.after(progressBar(p.bytes || 0, total, 'Backup progress'));
    } else if (active(b)) {
      sizes.textContent = b.status === 'queued' ? 'Waiting to start…' : 'Running…';
    } else {
      sizes.textContent = count(b.records) + ' records, ' + count(b.files) + ' files, ' + size(b.bytes) +
        ' (stored ' + size(b.storedBytes) + ')' + (b.startedAt && b.completedAt ? ', took ' + took(b.startedAt, b.completedAt) : '');
    }
    if (b.deletedAt) {
      const d = li.querySelector('.b-deleted');
      d.textContent = 'Deleted ' + when(b.deletedAt) + (b.deletedBy ? ' by ' + b.deletedBy : '') +
        (b.purgeAfter && b.status === 'deleted' ? '; purged after ' + when(b.purgeAfter) : '');
      d.hidden = false;
    }
    // Each action shows only where the contract allows it and the roles grant it.
    const allowed = {
      verify: b.status === 'completed', restore: b.status === 'completed',
      delete: b.status === 'completed', undelete: b.status === 'deleted',
    };
    li.querySelectorAll('button[data-act]').forEach((btn) => {
      btn.hidden = !allowed[btn.dataset.act] || !can(btn.dataset.needs);
      btn.setAttribute('aria-label', btn.textContent.replace('…', '') + ' the backup of ' + when(t));
    });
    return li;
  }

  function took(from, to) {
    const ms = new Date(to) - new Date(from);
    if (!(ms >= 0)) return '—';
    const sec = Math.round(ms / 1000);
    return sec < 90 ? sec + ' s' : Math.round(sec / 60) + ' min';
  }

  async function backupNow(button) {
    await run(button, async () => {
      const { data } = await api('POST', tpath('/backups'));
      announce('Backup ' + data.status + '.');
      await loadBackups(false);
    });
  }

  async function onBackupAction(button) {
    const li = button.closest('li.backup');
    const b = s.backups.get(li.dataset.id);
    if (!b) return;
    const act = button.dataset.act;
    if (act === 'restore') {
      openRestore(b);
      return;
    }
    if (act === 'delete' && !confirm('Delete this backup? It can be undeleted until it is purged.')) return;
    await run(button, async () => {
      const id = encodeURIComponent(b.backupId);
      if (act === 'verify') {
        const { data } = await api('POST', tpath('/restores'), { backupId: b.backupId, dryRun: true });
        trackRestore(data.restoreId, b, 'Verification');
      } else if (act === 'delete') {
        const { data } = await api('DELETE', tpath('/backups/' + id));
        replaceBackup(data);
        announce('Backup deleted.');
      } else if (act === 'undelete') {
        const { data } = await api('POST', tpath('/backups/' + id + '/undelete'));
        replaceBackup(data);
        announce('Backup undeleted.');
      }
    });
  }

  // ---- Restore and verify -----------------------------------------------------------

  function openRestore(b) {
    s.restoreFor = b;
    $('restore-what').textContent = 'Backup of ' + when(b.completedAt) + ' (' + count(b.records) + ' records, ' + count(b.files) + ' files).';
    $('restore-target').value = s.tenant;
    $('restore-form').hidden = false;
    $('mode-replace').focus();
  }

  function closeRestore() {
    const b = s.restoreFor;
    $('restore-form').hidden = true;
    s.restoreFor = null;
    // Return focus to where the person came from.
    const btn = b && document.querySelector('li.backup[data-id="' + CSS.escape(b.backupId) + '"] button[data-act=restore]');
    if (btn) btn.focus();
  }

  async function submitRestore(form) {
    const b = s.restoreFor;
    if (!b) return;
    const target = $('restore-target').value.trim();
    const bad = !TENANT_RE.test(target);
    $('restore-target').setAttribute('aria-invalid', String(bad));
    $('restore-target-err').textContent = bad ? 'Use 1 to 63 lower-case letters, digits and hyphens, not starting or ending with a hyphen.' : '';
    $('restore-target-err').hidden = !bad;
    if (bad) {
      $('restore-target').focus();
      return;
    }
    const mode = form.querySelector('input[name=mode]:checked').value;
    const warn = mode === 'replace'
      ? 'Replace all assets of tenant ' + target + ' with this backup? Records and files not in the backup are deleted.'
      : 'Write this backup\'s records and files into tenant ' + target + '?';
    if (!confirm(warn)) return;
    await run(form.querySelector('button[type=submit]'), async () => {
      const { data } = await api('POST', tpath('/restores'), { backupId: b.backupId, targetTenant: target, mode, dryRun: false });
      closeRestore();
      trackRestore(data.restoreId, b, 'Restore into ' + target);
    });
  }

  // trackRestore shows a restore's or verification's progress until it ends.
  function trackRestore(restoreId, b, title) {
    announce(title + ' started.');
    const box = $('job-progress');
    box.hidden = false;
    const render = (r) => {
      const p = r.progress || {};
      box.replaceChildren(el('h3', title + ': ' + r.state));
      // Bytes are the best measure of the work; the backup's totals are known.
      box.append(progressBar(p.bytes || 0, b.bytes || 0, title + ' progress'));
      box.append(el('p', count(p.records) + ' of ' + count(b.records) + ' records, ' + count(p.files) + ' of ' +
        count(b.files) + ' files, ' + size(p.bytes) + ' of ' + size(b.bytes) + '.'));
      if (r.error) box.append(el('p', r.error.message + ' (' + r.error.code + ')', 'field-error'));
      if (ended(r)) {
        announce(title + (r.state === 'succeeded' ? ' succeeded.' : ' failed' + (r.error ? ': ' + r.error.message : '.')));
      }
    };
    poll('restore', tpath('/restores/' + encodeURIComponent(restoreId)), render, ended);
  }

  // ---- Retention (§6) ------------------------------------------------------------------

  const KEEP = ['keepLast', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'];

  async function loadRetention() {
    const { data } = await api('GET', tpath('/retention'));
    renderRetention(data);
  }

  function renderRetention(p) {
    KEEP.forEach((k) => { $(k).value = String(p[k] || 0); });
    $('retention-source').textContent = p.source === 'tenant' ? 'This tenant\'s policy.' : 'The service\'s default policy.';
  }

  async function saveRetention(form) {
    const body = {};
    let bad = null;
    for (const k of KEEP) {
      const v = $(k).value.trim();
      const ok = /^\d{1,6}$/.test(v || '0');
      $(k).setAttribute('aria-invalid', String(!ok));
      if (!ok && !bad) bad = $(k);
      body[k] = ok ? Number(v || '0') : 0;
    }
    $('retention-err').textContent = bad ? 'Use whole numbers, 0 or more.' : '';
    $('retention-err').hidden = !bad;
    if (bad) {
      bad.focus();
      return;
    }
    await run(form.querySelector('button[type=submit]'), async () => {
      const { data } = await api('PUT', tpath('/retention'), body);
      renderRetention(data);
      announce('Retention policy saved.');
    });
  }

  // ---- Start ----------------------------------------------------------------------------

  function refreshAfterChange() {
    Promise.allSettled([loadByok(), loadBackups(false)]).then(reportFirst);
  }

  function reportFirst(results) {
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) showError(failed.reason);
  }

  // labelled names the section a load failed in: the first failure is
  // shown, and "Not found" alone would not say which part of the page.
  function labelled(label, promise) {
    return promise.catch((e) => {
      if (e && e.message) e.message = label + ': ' + e.message;
      throw e;
    });
  }

  function loadAll() {
    clearError();
    return Promise.allSettled([
      labelled('BYOK', loadByok()),
      labelled('Backups', loadBackups(false)),
      labelled('Retention', loadRetention()),
    ]).then(reportFirst);
  }

  function wire() {
    const on = (id, ev, fn) => $(id).addEventListener(ev, fn);
    on('signin-form', 'submit', (e) => {
      e.preventDefault();
      clearError();
      try {
        signIn($('signin-token').value.trim(), $('signin-tenant').value.trim());
        $('signin-token').value = '';
        loadAll();
      } catch (err) {
        showError(err);
      }
    });
    on('sign-out', 'click', signOut);
    on('byok-form', 'submit', (e) => { e.preventDefault(); enableByok($('byok-enable')); });
    on('byok-validate', 'click', (e) => validateKey(e.currentTarget));
    on('byok-disable', 'click', (e) => disableByok(e.currentTarget));
    document.querySelectorAll('button.copy').forEach((b) => b.addEventListener('click', () => copyField(b)));
    on('rewrap-form', 'submit', (e) => { e.preventDefault(); startRewrap(e.currentTarget); });
    on('backup-now', 'click', (e) => backupNow(e.currentTarget));
    on('backups-refresh', 'click', (e) => run(e.currentTarget, () => loadBackups(false)));
    on('backups-more', 'click', (e) => run(e.currentTarget, () => loadBackups(true)));
    on('include-deleted', 'change', (e) => {
      s.includeDeleted = e.currentTarget.checked;
      run(null, () => loadBackups(false));
    });
    // One listener for every backup's buttons, including ones added later.
    on('backup-list', 'click', (e) => {
      const btn = e.target.closest('button[data-act]');
      if (btn) onBackupAction(btn);
    });
    on('restore-form', 'submit', (e) => { e.preventDefault(); submitRestore(e.currentTarget); });
    on('restore-cancel', 'click', closeRestore);
    on('restore-form', 'keydown', (e) => { if (e.key === 'Escape') closeRestore(); });
    on('retention-form', 'submit', (e) => { e.preventDefault(); saveRetention(e.currentTarget); });
  }

  // start picks the token: App Service Authentication first, then a link's
  // #token=, then this tab's earlier sign-in, else the sign-in box.
  async function start() {
    wire();
    const frag = fromFragment();
    let token = await tokenFromEasyAuth();
    s.easyAuth = token !== '';
    if (!token) token = frag.token || sessionStorage.getItem(TOKEN_KEY) || '';
    s.functionKey = frag.functionKey || sessionStorage.getItem(FKEY_KEY) || '';
    if (!token) {
      offerSignIn('');
      return;
    }
    try {
      signIn(token, '');
    } catch (e) {
      offerSignIn('');
      showError(e);
      return;
    }
    await loadAll();
  }

  document.addEventListener('DOMContentLoaded', start);
})();
