// The access token: asked for when the server answers UNAUTHENTICATED, kept
// in sessionStorage (gone when the tab closes), sent as a Bearer token on
// fetch and in connection_init.

import { announce } from './dom.js';

const KEY = 'hindsight.token';
const listeners = new Set();

export function token() {
  try {
    return sessionStorage.getItem(KEY) || '';
  } catch {
    return '';
  }
}

function setToken(t) {
  try {
    if (t) sessionStorage.setItem(KEY, t);
    else sessionStorage.removeItem(KEY);
  } catch {
    // storage disabled: the token lives for this call only
  }
  for (const fn of listeners) fn(t);
}

/** Calls fn(token) whenever the token changes. */
export function onTokenChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function forgetToken() {
  setToken('');
  announce('Access token forgotten.');
}

export class AuthCancelled extends Error {
  constructor() {
    super('an access token is needed; none was given');
    this.name = 'AuthCancelled';
    this.code = 'UNAUTHENTICATED';
  }
}

let pending = null;

/**
 * Shows the token dialog (once, however many callers wait) and resolves
 * with the new token, or rejects with AuthCancelled.
 */
export function requireToken(reason) {
  if (pending) return pending;
  const dialog = document.getElementById('token-dialog');
  const form = dialog.querySelector('form');
  const input = dialog.querySelector('#token-input');
  const why = dialog.querySelector('#token-reason');
  why.textContent = token()
    ? `The stored token was refused. ${reason || ''}`
    : reason || 'The server needs an access token.';
  input.value = '';
  pending = new Promise((resolve, reject) => {
    const done = (ok) => {
      form.removeEventListener('submit', onSubmit);
      dialog.removeEventListener('close', onClose);
      if (dialog.open) dialog.close();
      pending = null;
      if (ok) {
        setToken(input.value.trim());
        input.value = '';
        announce('Access token saved.');
        resolve(token());
      } else {
        reject(new AuthCancelled());
      }
    };
    const onSubmit = (ev) => {
      ev.preventDefault();
      if (ev.submitter && ev.submitter.value === 'cancel') return done(false);
      if (!input.value.trim()) {
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return undefined;
      }
      input.removeAttribute('aria-invalid');
      return done(true);
    };
    const onClose = () => done(false); // Escape
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener('close', onClose);
  });
  dialog.showModal();
  input.focus();
  return pending;
}
