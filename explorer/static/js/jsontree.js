// A JSON value as a tree of <details> elements: keyboard-usable as is
// (Tab to a summary, Enter or Space to open or close it).

import { h } from './dom.js';

const MAX_CHILDREN = 200; // per level; the rest is counted, not drawn
const OPEN_DEPTH = 2; // levels open at first

function scalar(v) {
  if (v === null) return h('span', { class: 'j-null' }, 'null');
  switch (typeof v) {
    case 'string':
      return h('span', { class: 'j-str' }, JSON.stringify(v));
    case 'number':
      return h('span', { class: 'j-num' }, String(v));
    case 'boolean':
      return h('span', { class: 'j-bool' }, String(v));
    default:
      return h('span', {}, String(v));
  }
}

function label(key) {
  return key == null ? null : [h('span', { class: 'j-key' }, typeof key === 'number' ? `[${key}]` : key), ': '];
}

function node(key, v, depth) {
  if (v === null || typeof v !== 'object') {
    return h('li', {}, label(key), scalar(v));
  }
  const isArr = Array.isArray(v);
  const entries = isArr ? v.map((x, i) => [i, x]) : Object.entries(v);
  const summaryText = isArr ? `Array(${v.length})` : `{${entries.length === 1 ? '1 key' : `${entries.length} keys`}}`;
  if (entries.length === 0) {
    return h('li', {}, label(key), h('span', { class: 'j-empty' }, isArr ? '[]' : '{}'));
  }
  const list = h('ul', {});
  for (const [k, x] of entries.slice(0, MAX_CHILDREN)) list.append(node(k, x, depth + 1));
  if (entries.length > MAX_CHILDREN) {
    list.append(h('li', { class: 'muted' }, `… ${entries.length - MAX_CHILDREN} more not shown`));
  }
  return h('li', {}, h('details', { open: depth < OPEN_DEPTH }, h('summary', {}, label(key), h('span', { class: 'j-meta' }, summaryText)), list));
}

/** A tree of v, labelled by caption (for screen readers). */
export function jsonTree(v, caption = 'JSON') {
  if (v === undefined) return h('p', { class: 'muted' }, 'No value.');
  if (v === null || typeof v !== 'object') {
    return h('div', { class: 'json', role: 'group', 'aria-label': caption }, scalar(v));
  }
  const root = node(null, v, 0);
  return h('div', { class: 'json', role: 'group', 'aria-label': caption }, h('ul', { class: 'j-root' }, root));
}
