// Differences between two JSON values, as a list of changed paths.

import { h } from './dom.js';
import { jsonPreview } from './format.js';

const MAX_CHANGES = 500;

function isObj(v) {
  return v !== null && typeof v === 'object';
}

/**
 * The changes from a to b: [{path, kind, from, to}], kind one of added,
 * removed, changed. Arrays compare by index; objects by key.
 */
export function diff(a, b, path = [], out = []) {
  if (out.length >= MAX_CHANGES) return out;
  if (a === undefined && b === undefined) return out;
  if (a === undefined) {
    out.push({ path, kind: 'added', to: b });
    return out;
  }
  if (b === undefined) {
    out.push({ path, kind: 'removed', from: a });
    return out;
  }
  if (isObj(a) && isObj(b) && Array.isArray(a) === Array.isArray(b)) {
    const keys = Array.isArray(a)
      ? Array.from({ length: Math.max(a.length, b.length) }, (_, i) => i)
      : [...new Set([...Object.keys(a), ...Object.keys(b)])];
    for (const k of keys) diff(a[k], b[k], [...path, k], out);
    return out;
  }
  if (a !== b) out.push({ path, kind: 'changed', from: a, to: b });
  return out;
}

function pathText(path) {
  if (path.length === 0) return '(whole value)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

const SIGN = { added: '+', removed: '−', changed: '~' };

/** A table of the changes from a to b; caption names the comparison. */
export function diffTable(a, b, caption) {
  const changes = diff(a, b);
  if (changes.length === 0) {
    return h('p', { class: 'muted' }, 'No change in this view.');
  }
  return h(
    'table',
    { class: 'diff' },
    h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Change'), h('th', { scope: 'col' }, 'Path'), h('th', { scope: 'col' }, 'Before'), h('th', { scope: 'col' }, 'After'))),
    h(
      'tbody',
      {},
      changes.map((c) =>
        h(
          'tr',
          { class: `d-${c.kind}` },
          h('td', {}, h('span', { 'aria-hidden': 'true', class: 'd-sign' }, SIGN[c.kind]), ` ${c.kind}`),
          h('td', {}, h('code', {}, pathText(c.path))),
          h('td', {}, c.kind === 'added' ? h('span', { class: 'muted' }, '—') : h('code', {}, jsonPreview(c.from, 200))),
          h('td', {}, c.kind === 'removed' ? h('span', { class: 'muted' }, '—') : h('code', {}, jsonPreview(c.to, 200))),
        ),
      ),
    ),
    changes.length >= MAX_CHANGES ? h('tfoot', {}, h('tr', {}, h('td', { colspan: 4 }, `Only the first ${MAX_CHANGES} changes are shown.`))) : null,
  );
}
