// The global log, newest first, filtered by type and stream prefix, kept
// live by a subscription.
//
// The events query pages forward only, so newest-first reads windows of
// positions backward from the head: (head-W, head], then (head-2W, head-W],
// and so on. Unfiltered, a window of PAGE positions holds exactly PAGE
// events (positions are gap-free). Filtered, a window may hold few matches,
// so it widens while matches are sparse, and narrows when one request cannot
// cover it; a "load older" click makes at most MAX_REQUESTS requests.

import { h, render, announce, errorBox, throttle } from './dom.js';
import { gql, ORDER_STREAM_PREFIX } from './api.js';
import { fmtTime, jsonPreview } from './format.js';

const PAGE = 50; // rows a "load older" aims for
const FETCH = 100; // events per request
const MAX_ROWS = 1000; // rows kept; the oldest go first
const MAX_REQUESTS = 12; // per "load older"
const MAX_WINDOW = 1 << 20;

const FIELDS = 'position streamId version type data recordedAt';
const Q_HEAD = 'query Head { headPosition }';
const Q_WINDOW = `query LogWindow($after: Position!, $first: Int!, $types: [String!], $prefix: String) {
  events(afterPosition: $after, first: $first, types: $types, streamPrefix: $prefix) {
    edges { node { ${FIELDS} } }
    pageInfo { hasNextPage }
  }
}`;
const S_LOG = `subscription LiveLog($after: Position, $types: [String!], $prefix: String) {
  events(afterPosition: $after, types: $types, streamPrefix: $prefix) { ${FIELDS} }
}`;

export function parseTypes(s) {
  const list = (s || '').split(/[\s,]+/).map((t) => t.trim()).filter(Boolean);
  return list.length ? list : null;
}

/** The explorer link of a stream at a version: orders get the typed view. */
export function streamHref(streamId, version) {
  const v = version ? `?v=${version}` : '';
  if (streamId.startsWith(ORDER_STREAM_PREFIX) && streamId.length > ORDER_STREAM_PREFIX.length) {
    return `#/order/${encodeURIComponent(streamId.slice(ORDER_STREAM_PREFIX.length))}${v}`;
  }
  return `#/stream/${encodeURIComponent(streamId)}${v}`;
}

export function mount(root, params, ctx) {
  const types = parseTypes(params.get('types'));
  const prefix = params.get('prefix') || null;
  let alive = true;
  let hi = 0; // the highest position not yet scanned below the rows
  let win = PAGE; // positions per window
  let lastSeen = 0; // the newest position received (resume point)
  let pending = []; // live events not yet shown, oldest first
  let overflow = false; // pending dropped some: show means reload
  let unsubscribe = null;
  let loading = false;
  const knownTypes = new Set();

  const typesInput = h('input', {
    id: 'f-types', name: 'types', type: 'text', value: types ? types.join(', ') : '',
    list: 'known-types', autocomplete: 'off', 'aria-describedby': 'f-types-hint', spellcheck: 'false',
  });
  const prefixInput = h('input', { id: 'f-prefix', name: 'prefix', type: 'text', value: prefix || '', autocomplete: 'off', spellcheck: 'false' });
  const datalist = h('datalist', { id: 'known-types' });
  const autoBox = h('input', { id: 'log-auto', type: 'checkbox', checked: true });
  const newButton = h('button', { type: 'button', id: 'log-new', class: 'pill floating', hidden: true, onclick: showPending });
  const info = h('p', { id: 'log-info', class: 'muted', role: 'status' });
  const liveState = h('p', { id: 'log-live', class: 'muted' });
  const tbody = h('tbody', {});
  const table = h(
    'table',
    { class: 'log', id: 'log-table', tabindex: '-1' },
    h('caption', { class: 'sr-only' }, 'Events of the global log, newest first'),
    h('thead', {}, h('tr', {}, ['Position', 'Recorded', 'Stream', 'Version', 'Type', 'Data'].map((c) => h('th', { scope: 'col' }, c)))),
    tbody,
  );
  const olderButton = h('button', { type: 'button', id: 'log-older', hidden: true, onclick: () => loadOlder() }, 'Load older events');
  const endNote = h('p', { class: 'muted', id: 'log-end' });
  const errorSlot = h('div', {});

  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter the log', onsubmit: applyFilters },
    h('div', { class: 'field' }, h('label', { for: 'f-types' }, 'Event types'), typesInput,
      h('small', { id: 'f-types-hint', class: 'muted' }, 'Comma-separated, e.g. OrderPaid, OrderShipped')),
    h('div', { class: 'field' }, h('label', { for: 'f-prefix' }, 'Stream prefix'), prefixInput),
    h('div', { class: 'buttons' },
      h('button', { type: 'submit' }, 'Apply filters'),
      h('button', { type: 'button', class: 'secondary', onclick: () => ctx.navigate('#/log') }, 'Clear')),
    datalist,
  );

  render(
    root,
    h('h2', { id: 'view-title', tabindex: '-1' }, 'Global log'),
    h('p', { class: 'lede' }, 'Every event of every stream, newest first. Open a stream to travel through its history.'),
    form,
    h('div', { class: 'toolbar' },
      h('label', { class: 'check' }, autoBox, ' Insert new events as they arrive'),
      newButton,
      liveState),
    info,
    errorSlot,
    h('div', { class: 'table-wrap' }, table),
    h('div', { class: 'below' }, olderButton, endNote),
  );

  const say = throttle((msg) => announce(msg), 4000);

  function applyFilters(ev) {
    ev.preventDefault();
    const q = new URLSearchParams();
    const t = parseTypes(typesInput.value);
    if (t) q.set('types', t.join(','));
    if (prefixInput.value.trim()) q.set('prefix', prefixInput.value.trim());
    const s = q.toString();
    ctx.navigate(`#/log${s ? `?${s}` : ''}`);
  }

  function row(e, fresh) {
    knownTypes.add(e.type);
    return h(
      'tr',
      { dataset: { pos: e.position }, class: fresh ? 'fresh' : null },
      h('td', { class: 'num' }, e.position),
      h('td', { class: 'time' }, h('time', { datetime: e.recordedAt, title: e.recordedAt }, fmtTime(e.recordedAt))),
      h('td', { class: 'stream' }, h('a', { href: streamHref(e.streamId, e.version) }, e.streamId)),
      h('td', { class: 'num' }, e.version),
      h('td', {}, e.type),
      h('td', {}, h('code', { class: 'preview' }, jsonPreview(e.data, 120))),
    );
  }

  function refreshTypes() {
    const have = new Set([...datalist.options].map((o) => o.value));
    for (const t of knownTypes) {
      if (have.size >= 100) break;
      if (!have.has(t)) {
        datalist.append(h('option', { value: t }));
        have.add(t);
      }
    }
  }

  function updateInfo() {
    const n = tbody.rows.length;
    const filt = [types && `types ${types.join(', ')}`, prefix && `streams starting with “${prefix}”`].filter(Boolean).join(' and ');
    info.textContent = n === 0
      ? ''
      : `${n} event${n === 1 ? '' : 's'} shown${filt ? `, ${filt}` : ''}; newest position ${tbody.rows[0].dataset.pos}.`;
  }

  function updateNewButton() {
    const n = pending.length;
    newButton.hidden = n === 0;
    newButton.textContent = `${n}${overflow ? '+' : ''} new event${n === 1 ? '' : 's'} — show`;
  }

  function atTop() {
    const head = table.tHead.getBoundingClientRect();
    return head.bottom >= 0 && document.visibilityState === 'visible';
  }

  // Rows beyond MAX_ROWS go; older ones can be loaded again.
  function trim() {
    while (tbody.rows.length > MAX_ROWS) tbody.lastElementChild.remove();
    const last = tbody.lastElementChild;
    if (last && tbody.rows.length === MAX_ROWS) {
      hi = Math.min(hi, Number(last.dataset.pos) - 1);
      olderButton.hidden = false;
      endNote.textContent = '';
    }
  }

  function insertTop(events) {
    // events oldest first; each goes on top.
    for (const e of events) tbody.prepend(row(e, true));
    trim();
    refreshTypes();
    updateInfo();
  }

  function showPending() {
    if (overflow) {
      // Too many arrived to hold: read the newest again.
      reload();
      return;
    }
    const n = pending.length;
    insertTop(pending);
    pending = [];
    updateNewButton();
    table.scrollIntoView({ block: 'start' });
    table.focus();
    announce(`${n} new event${n === 1 ? '' : 's'} shown at the top of the log.`);
  }

  function onLive(payload) {
    if (!alive) return;
    if (payload.errors && payload.errors.length && !payload.data) {
      liveState.textContent = `Live updates: ${payload.errors[0].message}`;
      return;
    }
    const e = payload.data && payload.data.events;
    if (!e) return;
    if (liveState.textContent) liveState.textContent = '';
    const pos = Number(e.position);
    if (pos <= lastSeen) return; // at-least-once safety; the server sends exactly once
    lastSeen = pos;
    if (autoBox.checked && pending.length === 0 && atTop()) {
      insertTop([e]);
      say('New events arrived at the top of the log.');
      return;
    }
    pending.push(e);
    if (pending.length > MAX_ROWS) {
      pending.shift();
      overflow = true;
    }
    updateNewButton();
    say(`${pending.length} new event${pending.length === 1 ? '' : 's'} arrived.`);
  }

  function subscribe() {
    if (unsubscribe) unsubscribe();
    unsubscribe = ctx.live.subscribe(
      { query: S_LOG, variables: () => ({ after: String(lastSeen), types, prefix }), endless: true },
      {
        next: onLive,
        error: (errs) => {
          if (!alive) return;
          render(liveState, `Live updates stopped: ${errs.map((e) => e.message).join('; ')} `,
            h('button', { type: 'button', class: 'link', onclick: subscribe }, 'Restart'));
        },
        retry: (errs, delay) => {
          if (alive) liveState.textContent = `Live updates interrupted (${errs[0] ? errs[0].message : 'ended by the server'}); resuming in ${Math.ceil(delay / 1000)} s.`;
        },
        complete: () => {
          if (alive) liveState.textContent = 'Live updates ended by the server.';
        },
      },
    );
    liveState.textContent = '';
  }

  async function loadOlder(target = PAGE) {
    if (loading || hi <= 0) return;
    loading = true;
    olderButton.disabled = true;
    table.setAttribute('aria-busy', 'true');
    render(errorSlot);
    let got = 0;
    let requests = 0;
    try {
      while (got < target && hi > 0 && requests < MAX_REQUESTS) {
        const lo = Math.max(0, hi - win);
        const data = await gql(Q_WINDOW, { after: String(lo), first: FETCH, types, prefix });
        requests += 1;
        if (!alive) return;
        const edges = data.events.edges;
        const nodes = edges.map((e) => e.node).filter((n) => Number(n.position) <= hi);
        const covered = !data.events.pageInfo.hasNextPage || nodes.length < edges.length
          || (nodes.length > 0 && Number(nodes[nodes.length - 1].position) >= hi);
        if (!covered) {
          win = Math.max(FETCH, Math.floor(win / 4)); // too dense: narrow and read again
          continue;
        }
        for (let i = nodes.length - 1; i >= 0; i--) tbody.append(row(nodes[i], false));
        got += nodes.length;
        hi = lo;
        if (types || prefix) {
          if (nodes.length < FETCH / 4) win = Math.min(MAX_WINDOW, win * 4); // sparse: widen
          else if (nodes.length > (FETCH * 3) / 4) win = Math.max(FETCH, Math.floor(win / 2));
        }
      }
      if (tbody.rows.length > MAX_ROWS) {
        // Keep the newest MAX_ROWS and let "load older" continue below them.
        while (tbody.rows.length > MAX_ROWS) tbody.lastElementChild.remove();
        hi = Number(tbody.lastElementChild.dataset.pos) - 1;
      }
    } catch (e) {
      if (alive) render(errorSlot, errorBox(e));
    } finally {
      loading = false;
      if (alive) {
        table.removeAttribute('aria-busy');
        olderButton.disabled = false;
        olderButton.hidden = hi <= 0;
        if (hi <= 0) {
          endNote.textContent = tbody.rows.length ? 'This is the start of the log.' : (types || prefix ? 'No event matches these filters yet.' : 'The log is empty.');
        } else if (got === 0) {
          endNote.textContent = `No match between positions ${hi + 1} and the rows above; “Load older events” searches further back.`;
        } else {
          endNote.textContent = '';
        }
        refreshTypes();
        updateInfo();
      }
    }
  }

  async function reload() {
    pending = [];
    overflow = false;
    updateNewButton();
    render(tbody);
    render(errorSlot);
    try {
      const data = await gql(Q_HEAD);
      if (!alive) return;
      const head = Number(data.headPosition);
      hi = head;
      win = PAGE;
      lastSeen = Math.max(lastSeen, head);
      if (!unsubscribe) subscribe();
      await loadOlder();
    } catch (e) {
      if (alive) render(errorSlot, errorBox(e));
    }
  }

  const onVisible = () => {
    if (document.visibilityState === 'visible') updateNewButton();
  };
  document.addEventListener('visibilitychange', onVisible);
  reload();

  return {
    unmount() {
      alive = false;
      document.removeEventListener('visibilitychange', onVisible);
      if (unsubscribe) unsubscribe();
    },
  };
}
