// Small DOM helpers: h() builds elements, announce() speaks through the
// page's polite live region.

/**
 * h('button', {type: 'button', onclick: f, class: 'x', 'aria-label': 'y'}, 'text', child)
 * Attributes starting with "on" become listeners; null/false attributes and
 * children are skipped; strings become text nodes (never HTML).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'style' && typeof v === 'object') {
      Object.assign(el.style, v);
    } else if (k in el && typeof v !== 'string' && k !== 'list') {
      el[k] = v; // properties such as checked, value (numbers), hidden
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Replaces el's children. */
export function render(el, ...children) {
  clear(el);
  return append(el, children);
}

let announceTimer;
/** Says msg through the polite live region (#announcer), once. */
export function announce(msg) {
  const region = document.getElementById('announcer');
  if (!region) return;
  clearTimeout(announceTimer);
  region.textContent = '';
  // A fresh text node after a tick makes screen readers read it again.
  announceTimer = setTimeout(() => { region.textContent = msg; }, 50);
}

let idSeq = 0;
export function uid(prefix = 'id') {
  idSeq += 1;
  return `${prefix}-${idSeq}`;
}

/** Calls fn at most once per wait ms, with the latest arguments (trailing). */
export function throttle(fn, wait) {
  let timer = null;
  let last = 0;
  let args;
  return (...a) => {
    args = a;
    const now = Date.now();
    if (timer) return;
    const delay = Math.max(0, last + wait - now);
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn(...args);
    }, delay);
  };
}

/**
 * A message paragraph for errors, with role=alert so it is announced. When
 * the error is a missing or refused token, it offers to enter one and then
 * opens the view again.
 */
export function errorBox(err) {
  const msg = err && err.message ? err.message : String(err);
  const code = err && err.code ? ` (${err.code})` : '';
  const auth = err && (err.code === 'UNAUTHENTICATED' || err.code === 'FORBIDDEN');
  return h('p', { class: 'error', role: 'alert' }, `Error: ${msg}${code} `,
    auth ? h('button', {
      type: 'button',
      class: 'link',
      onclick: async () => {
        const { requireToken } = await import('./auth.js');
        try {
          await requireToken(err.code === 'FORBIDDEN' ? 'The token may not do this; enter another one.' : 'The server needs an access token.');
          window.dispatchEvent(new HashChangeEvent('hashchange'));
        } catch {
          // cancelled again
        }
      },
    }, 'Enter an access token') : null);
}
