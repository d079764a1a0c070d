// One stream or order through time: a slider over its versions, the state
// at the chosen version (typed for orders, a JSON tree otherwise), the event
// that produced it, the changes from the version before, jump to a time, a
// live toggle, the stream's events page by page, and hash-chain verification.
//
// Nothing here reads a whole stream: a revision costs one request (the event
// at v, and the state at v and v-1), the tick labels one request with an
// alias per tick, the events list a page of PAGE, and "jump to time" a
// search of a few requests of 8 probes each.

import { h, render, announce, errorBox, throttle } from './dom.js';
import { gql, EVENT_FIELDS, ORDER_FIELDS, ORDER_STREAM_PREFIX } from './api.js';
import { fmtTime, fmtTick, fmtMoney, fromLocalInput, toLocalInput, TIME_INPUT, parseTime, timeKey } from './format.js';
import { jsonTree } from './jsontree.js';
import { diffTable } from './diff.js';
import { proofPanel } from './proof.js';

const PAGE = 20; // events per page of the events list
const MAX_LISTED = 500; // rows of the events list; live ones push the oldest out
const CACHE = 64; // revisions kept (history never changes)
const PROBES = 8; // versions read per round of a time search

const Q_OPEN = `query OpenStream($id: String!, $oid: ID!, $isOrder: Boolean!) {
  stream(id: $id) { id version createdAt updatedAt }
  order(id: $oid) @include(if: $isOrder) { id }
}`;
const Q_REV_STREAM = `query StreamRevision($id: String!, $after: Int!, $v: Int!, $pv: Int!) {
  stream(id: $id) {
    events(afterVersion: $after, first: 1) { edges { node { ${EVENT_FIELDS} } } }
    cur: state(at: {version: $v})
    prev: state(at: {version: $pv})
  }
}`;
const Q_REV_ORDER = `query OrderRevision($id: String!, $oid: ID!, $after: Int!, $v: Int!, $pv: Int!) {
  stream(id: $id) { events(afterVersion: $after, first: 1) { edges { node { ${EVENT_FIELDS} } } } }
  cur: order(id: $oid, at: {version: $v}) { ${ORDER_FIELDS} }
  prev: order(id: $oid, at: {version: $pv}) { ${ORDER_FIELDS} }
}`;
const Q_EVENTS = `query StreamEvents($id: String!, $before: Int!, $first: Int!) {
  stream(id: $id) {
    events(afterVersion: $before, backward: true, first: $first) {
      edges { node { version position type recordedAt } }
      pageInfo { hasNextPage }
    }
  }
}`;
const Q_VERIFY = `query Verify($id: String!) { stream(id: $id) { verify { ok checkedEvents firstBrokenVersion reason } } }`;
const Q_ORDER_AT_TIME = `query OrderAtTime($oid: ID!, $t: Time!) { order(id: $oid, at: {time: $t}) { version } }`;
const S_STREAM = `subscription FollowStream($id: String!, $after: Int) {
  streamEvents(streamId: $id, afterVersion: $after) { ${EVENT_FIELDS} }
}`;

/** Versions of the first event of each of n evenly spaced points of 1..max. */
function spread(max, n) {
  if (max <= 1 || n <= 1) return [1];
  const out = new Set();
  for (let k = 0; k < n; k++) out.add(1 + Math.round(((max - 1) * k) / (n - 1)));
  return [...out];
}

/** A query reading the recordedAt of each version, one alias per version. */
function timesQuery(versions) {
  const fields = versions
    .map((v, i) => `t${i}: events(afterVersion: ${v - 1}, first: 1) { edges { node { version recordedAt type } } }`)
    .join('\n');
  return `query VersionTimes($id: String!) { stream(id: $id) { ${fields} } }`;
}

/** An order as compared between revisions: items by sku, bookkeeping left out. */
function comparable(o) {
  if (!o) return {};
  const items = {};
  for (const it of o.items) items[it.sku] = { quantity: it.quantity, unitPriceCents: it.unitPriceCents };
  return {
    status: o.status, customerId: o.customerId, totalCents: o.totalCents, items,
    placedAt: o.placedAt, paidAt: o.paidAt, shippedAt: o.shippedAt, cancelledAt: o.cancelledAt,
    cancelReason: o.cancelReason, trackingNumber: o.trackingNumber,
  };
}

/**
 * params: kind ('stream' | 'order'), id, and the URL's search params (v, view).
 */
export function mount(root, { kind, id, search }, ctx) {
  let streamId = kind === 'order' ? ORDER_STREAM_PREFIX + id : id;
  let orderId = kind === 'order' ? id : null;
  const forceJSON = search.get('view') === 'json';
  let alive = true;
  let maxV = 0;
  let current = 0;
  let seq = 0;
  let unsubscribe = null;
  let newer = 0; // events that arrived while not following
  let updatedAt = null;
  let createdAt = null;
  const cache = new Map();
  const times = new Map(); // version → {recordedAt, type}
  let debounce = null;
  let oldestListed = 0; // the oldest version in the events list (0: none yet)
  const listed = new Set();

  const title = h('h2', { id: 'view-title', tabindex: '-1' }, kind === 'order' ? `Order ${id}` : `Stream ${id}`);
  const meta = h('p', { class: 'meta muted', id: 'stream-meta' });
  const verifyButton = h('button', { type: 'button', id: 'verify', onclick: verify }, 'Verify hash chain');
  const verifyResult = h('div', { id: 'verify-result', role: 'status' });
  const viewToggle = h('a', { id: 'view-toggle', class: 'button-link secondary', hidden: true });
  const slider = h('input', { id: 'slider', type: 'range', min: '1', max: '1', step: '1', value: '1', list: 'slider-ticks', 'aria-describedby': 'slider-help' });
  const sliderOut = h('output', { id: 'slider-out', for: 'slider' });
  const ticks = h('div', { class: 'ticks', 'aria-hidden': 'true' });
  const tickList = h('datalist', { id: 'slider-ticks' });
  const prevButton = h('button', { type: 'button', class: 'secondary', onclick: () => step(-1), 'aria-label': 'Previous version' }, '◀ Previous');
  const nextButton = h('button', { type: 'button', class: 'secondary', onclick: () => step(1), 'aria-label': 'Next version' }, 'Next ▶');
  const latestButton = h('button', { type: 'button', class: 'secondary', onclick: () => userShow(maxV), 'aria-label': 'Latest version' }, 'Latest ▶▶');
  const jumpInput = h('input', { id: 'jump-time', ...TIME_INPUT, required: true });
  const jumpResult = h('p', { id: 'jump-result', class: 'muted', role: 'status' });
  const followBox = h('input', { id: 'follow', type: 'checkbox', checked: !search.get('v'), onchange: onFollow });
  const liveNote = h('p', { id: 'live-note', class: 'muted', role: 'status' });
  const stateHead = h('h3', { id: 'state-h' }, 'State');
  const stateBody = h('div', { id: 'state', class: 'panel-body' });
  const eventHead = h('h3', { id: 'event-h' }, 'Event');
  const eventBody = h('div', { id: 'event', class: 'panel-body' });
  const diffHead = h('h3', { id: 'diff-h' }, 'Changes');
  const diffBody = h('div', { id: 'diff', class: 'panel-body' });
  const eventsBody = h('tbody', {});
  const olderEvents = h('button', { type: 'button', id: 'events-older', hidden: true, onclick: () => loadEvents() }, 'Older events');
  const errorSlot = h('div', { id: 'stream-error' });
  const panels = h('div', { class: 'panels', id: 'panels' },
    h('section', { class: 'panel', 'aria-labelledby': 'state-h' }, stateHead, stateBody),
    h('section', { class: 'panel', 'aria-labelledby': 'event-h' }, eventHead, eventBody),
    h('section', { class: 'panel', 'aria-labelledby': 'diff-h' }, diffHead, diffBody));

  const timeline = h(
    'section',
    { class: 'timeline', 'aria-labelledby': 'timeline-h', id: 'timeline' },
    h('h3', { id: 'timeline-h', class: 'sr-only' }, 'Timeline'),
    h('div', { class: 'slider-head' },
      h('label', { for: 'slider' }, 'Version'), ' ', sliderOut),
    h('div', { class: 'slider-wrap' }, slider, tickList, ticks),
    h('p', { id: 'slider-help', class: 'sr-only' }, 'Arrow keys step one version; Home and End go to the first and the latest.'),
    h('div', { class: 'controls' },
      h('div', { class: 'buttons' }, prevButton, nextButton, latestButton),
      h('form', { class: 'jump', onsubmit: jumpToTime },
        h('label', { for: 'jump-time' }, 'Jump to time'), jumpInput,
        h('button', { type: 'submit' }, 'Jump')),
      h('label', { class: 'check' }, followBox, ' Follow live')),
    jumpResult,
    liveNote,
  );

  render(
    root,
    h('div', { class: 'stream-head' },
      h('div', {}, title, meta),
      h('div', { class: 'actions' }, viewToggle, verifyButton)),
    verifyResult,
    errorSlot,
    timeline,
    panels,
    h('section', { class: 'events', 'aria-labelledby': 'events-h' },
      h('h3', { id: 'events-h' }, 'Events, newest first'),
      h('div', { class: 'table-wrap' },
        h('table', { class: 'log', id: 'stream-events' },
          h('caption', { class: 'sr-only' }, 'Events of this stream, newest first; choose a version to show it'),
          h('thead', {}, h('tr', {}, ['Version', 'Type', 'Recorded', 'Position'].map((c) => h('th', { scope: 'col', class: c === 'Position' ? 'num' : null }, c)))),
          eventsBody)),
      olderEvents),
  );

  // --- the slider

  function setURL(v) {
    const q = new URLSearchParams(search);
    q.set('v', String(v));
    const path = orderId && kind === 'order' ? `#/order/${encodeURIComponent(orderId)}` : `#/stream/${encodeURIComponent(streamId)}`;
    history.replaceState(null, '', `${path}?${q}`);
  }

  function describe(v) {
    const t = times.get(v);
    const parts = [`Version ${v} of ${maxV}`];
    if (t) parts.push(t.type, fmtTime(t.recordedAt));
    return parts.join(', ');
  }

  function updateSlider() {
    slider.max = String(Math.max(1, maxV));
    slider.value = String(current);
    slider.disabled = maxV <= 1;
    sliderOut.textContent = `${current} of ${maxV}`;
    slider.setAttribute('aria-valuetext', describe(current));
    prevButton.disabled = current <= 1;
    nextButton.disabled = current >= maxV;
    latestButton.disabled = current >= maxV;
    for (const tr of eventsBody.rows) {
      if (Number(tr.dataset.version) === current) tr.setAttribute('aria-current', 'true');
      else tr.removeAttribute('aria-current');
    }
  }

  function updateMeta() {
    const what = orderId ? `Stream ${streamId}` : null;
    meta.textContent = [
      what,
      `${maxV} version${maxV === 1 ? '' : 's'}`,
      createdAt && `created ${fmtTime(createdAt, { ms: false })}`,
      updatedAt && `last event ${fmtTime(updatedAt, { ms: false })}`,
    ].filter(Boolean).join(' · ');
  }

  // The user moved away from the newest version: stop following.
  function userShow(v) {
    v = Math.min(Math.max(1, v), maxV);
    if (followBox.checked && v < maxV) {
      followBox.checked = false;
      liveNote.textContent = 'Stopped following live events; check “Follow live” to follow again.';
    }
    show(v);
  }

  function step(d) {
    userShow(current + d);
  }

  slider.addEventListener('input', () => {
    const v = Number(slider.value);
    sliderOut.textContent = `${v} of ${maxV}`;
    clearTimeout(debounce);
    debounce = setTimeout(() => userShow(v), 60);
  });
  slider.addEventListener('change', () => {
    clearTimeout(debounce);
    userShow(Number(slider.value));
  });

  function onFollow() {
    if (followBox.checked) {
      newer = 0;
      liveNote.textContent = 'Following live events.';
      show(maxV);
    } else {
      liveNote.textContent = 'Not following live events.';
    }
  }

  async function fetchRevision(v) {
    if (cache.has(v)) return cache.get(v);
    const vars = { id: streamId, after: v - 1, v, pv: v - 1 };
    const data = orderId
      ? await gql(Q_REV_ORDER, { ...vars, oid: orderId })
      : await gql(Q_REV_STREAM, vars);
    if (!data.stream) throw new Error(`stream ${streamId} has no events`);
    const edge = data.stream.events.edges[0];
    const rev = {
      event: edge ? edge.node : null,
      cur: orderId ? data.cur : data.stream.cur,
      prev: orderId ? data.prev : data.stream.prev,
    };
    if (rev.event) times.set(v, { recordedAt: rev.event.recordedAt, type: rev.event.type });
    cache.set(v, rev);
    if (cache.size > CACHE) cache.delete(cache.keys().next().value);
    return rev;
  }

  async function show(v) {
    if (!maxV) return;
    current = Math.min(Math.max(1, v), maxV);
    if (current === maxV && newer) {
      newer = 0; // the newer events are in view now
      liveNote.textContent = '';
    }
    updateSlider();
    setURL(current);
    const my = ++seq;
    panels.setAttribute('aria-busy', 'true');
    try {
      const rev = await fetchRevision(current);
      if (!alive || my !== seq) return;
      draw(current, rev);
      render(errorSlot);
    } catch (e) {
      if (alive && my === seq) render(errorSlot, errorBox(e));
    } finally {
      if (alive && my === seq) panels.removeAttribute('aria-busy');
    }
  }

  function draw(v, rev) {
    const ev = rev.event;
    slider.setAttribute('aria-valuetext', describe(v));
    stateHead.textContent = `State at version ${v}`;
    render(stateBody,
      ev ? h('p', { class: 'muted' }, 'As of ', h('time', { datetime: ev.recordedAt }, fmtTime(ev.recordedAt)), `, position ${ev.position}`) : null,
      orderId ? orderView(rev.cur) : jsonTree(rev.cur, `State at version ${v}`));
    eventHead.textContent = ev ? `Event ${v}: ${ev.type}` : `Event ${v}`;
    render(eventBody, ev ? eventView(ev) : h('p', { class: 'muted' }, 'No event at this version.'));
    diffHead.textContent = v > 1 ? `Changes from version ${v - 1}` : 'Changes (first event)';
    render(diffBody,
      orderId
        ? [diffTable(comparable(rev.prev), comparable(rev.cur), `Changes of the order from version ${v - 1} to ${v}`),
          h('p', { class: 'muted small' }, 'Version, position and update time change with every event and are left out.')]
        : diffTable(rev.prev == null && rev.cur && typeof rev.cur === 'object' ? {} : rev.prev, rev.cur, `Changes of the state from version ${v - 1} to ${v}`));
  }

  function orderView(o) {
    if (!o) return h('p', { class: 'muted' }, 'The order did not exist at this version.');
    const dates = [['Created', o.createdAt], ['Placed', o.placedAt], ['Paid', o.paidAt], ['Shipped', o.shippedAt], ['Cancelled', o.cancelledAt]]
      .filter(([, t]) => t);
    return h('div', { class: 'order', id: 'order-view' },
      h('dl', { class: 'facts' },
        h('div', {}, h('dt', {}, 'Status'), h('dd', {}, h('span', { id: 'order-status', class: `badge status-${o.status}` }, o.status))),
        h('div', {}, h('dt', {}, 'Total'), h('dd', { id: 'order-total', dataset: { cents: o.totalCents } }, fmtMoney(o.totalCents))),
        h('div', {}, h('dt', {}, 'Customer'), h('dd', { id: 'order-customer' }, o.customerId)),
        o.trackingNumber ? h('div', {}, h('dt', {}, 'Tracking number'), h('dd', { id: 'order-tracking' }, o.trackingNumber)) : null,
        o.cancelReason ? h('div', {}, h('dt', {}, 'Cancel reason'), h('dd', {}, o.cancelReason)) : null,
        dates.map(([k, t]) => h('div', {}, h('dt', {}, k), h('dd', {}, h('time', { datetime: t }, fmtTime(t)))))),
      h('table', { class: 'items', id: 'order-items' },
        h('caption', {}, `Items (${o.items.length})`),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'SKU'), h('th', { scope: 'col', class: 'num' }, 'Quantity'),
          h('th', { scope: 'col', class: 'num' }, 'Unit price'), h('th', { scope: 'col', class: 'num' }, 'Line total'))),
        h('tbody', {}, o.items.length
          ? o.items.map((it) => h('tr', {}, h('td', {}, it.sku), h('td', { class: 'num' }, it.quantity),
            h('td', { class: 'num' }, fmtMoney(it.unitPriceCents)), h('td', { class: 'num' }, fmtMoney(it.quantity * it.unitPriceCents))))
          : h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No items'))),
        h('tfoot', {}, h('tr', {}, h('th', { scope: 'row', colspan: 3 }, 'Total'), h('td', { class: 'num' }, fmtMoney(o.totalCents))))));
  }

  function eventView(ev) {
    return [
      h('dl', { class: 'facts' },
        h('div', {}, h('dt', {}, 'Type'), h('dd', { id: 'event-type' }, ev.type)),
        h('div', {}, h('dt', {}, 'Version'), h('dd', {}, ev.version)),
        h('div', {}, h('dt', {}, 'Position'), h('dd', {}, ev.position)),
        h('div', {}, h('dt', {}, 'Recorded'), h('dd', {}, h('time', { datetime: ev.recordedAt, title: ev.recordedAt }, fmtTime(ev.recordedAt)))),
        h('div', {}, h('dt', {}, 'Event id'), h('dd', {}, h('code', {}, ev.id))),
        h('div', {}, h('dt', {}, 'Hash'), h('dd', {}, h('code', { class: 'hash', title: ev.hash }, `${ev.hash.slice(0, 16)}…`)))),
      h('h4', {}, 'Data'),
      jsonTree(ev.data, 'Event data'),
      ev.metadata != null ? [h('h4', {}, 'Metadata'), jsonTree(ev.metadata, 'Event metadata')] : null,
      h('h4', {}, 'Verifiable log'), proofPanel(ev),
    ];
  }

  // --- tick labels: the time of a few evenly spaced versions

  async function loadTicks() {
    if (!maxV) return;
    const width = slider.getBoundingClientRect().width || 600;
    const n = Math.max(2, Math.min(8, Math.floor(width / 120)));
    const versions = spread(maxV, Math.min(n, maxV));
    try {
      const data = await gql(timesQuery(versions), { id: streamId });
      if (!alive || !data.stream) return;
      const pts = versions.map((v, i) => {
        const node = data.stream[`t${i}`].edges[0] && data.stream[`t${i}`].edges[0].node;
        if (node) times.set(v, { recordedAt: node.recordedAt, type: node.type });
        return node ? { v, t: parseTime(node.recordedAt) } : null;
      }).filter(Boolean);
      const span = pts.length > 1 ? pts[pts.length - 1].t - pts[0].t : 0;
      render(tickList, pts.map((p) => h('option', { value: p.v, label: fmtTick(p.t, span) })));
      render(ticks, pts.map((p, i) => {
        const frac = maxV > 1 ? (p.v - 1) / (maxV - 1) : 0;
        const align = i === 0 ? 'start' : i === pts.length - 1 && pts.length > 1 ? 'end' : 'mid';
        return h('span', { class: `tick ${align}`, style: { left: `calc(var(--thumb) / 2 + (100% - var(--thumb)) * ${frac})` }, title: `version ${p.v}: ${fmtTime(p.t)}` },
          h('span', { class: 'tick-v' }, `v${p.v}`), h('span', { class: 'tick-t' }, fmtTick(p.t, span)));
      }));
      slider.setAttribute('aria-valuetext', describe(current));
    } catch (e) {
      if (alive) render(ticks, h('span', { class: 'muted' }, `Times unavailable: ${e.message}`));
    }
  }
  const ticksSoon = throttle(loadTicks, 1000);
  const onResize = throttle(loadTicks, 500);

  // --- the events list, newest first, page by page

  function eventRow(e) {
    listed.add(e.version);
    return h('tr', { dataset: { version: e.version }, 'aria-current': e.version === current ? 'true' : null },
      h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => userShow(e.version), 'aria-label': `Show version ${e.version}` }, `v${e.version}`)),
      h('td', {}, e.type),
      h('td', { class: 'time' }, h('time', { datetime: e.recordedAt }, fmtTime(e.recordedAt))),
      h('td', { class: 'num' }, e.position));
  }

  // The page of events older than the oldest listed (newer than maxV at first).
  async function loadEvents() {
    olderEvents.disabled = true;
    try {
      const before = oldestListed || maxV + 1;
      const data = await gql(Q_EVENTS, { id: streamId, before, first: PAGE });
      if (!alive || !data.stream) return;
      const conn = data.stream.events;
      for (const { node } of conn.edges) {
        if (!listed.has(node.version)) eventsBody.append(eventRow(node));
        oldestListed = oldestListed ? Math.min(oldestListed, node.version) : node.version;
      }
      olderEvents.hidden = !conn.pageInfo.hasNextPage;
    } catch (e) {
      if (alive) render(errorSlot, errorBox(e));
    } finally {
      olderEvents.disabled = false;
    }
  }

  // --- live

  function onLive(payload) {
    if (!alive) return;
    const ev = payload.data && payload.data.streamEvents;
    if (!ev || ev.version <= maxV) return;
    maxV = ev.version;
    updatedAt = ev.recordedAt;
    if (!listed.has(ev.version)) {
      const tr = eventRow(ev);
      tr.classList.add('fresh');
      eventsBody.prepend(tr);
      while (eventsBody.rows.length > MAX_LISTED) {
        listed.delete(Number(eventsBody.lastElementChild.dataset.version));
        eventsBody.lastElementChild.remove();
        oldestListed = Number(eventsBody.lastElementChild.dataset.version);
        olderEvents.hidden = false;
      }
    }
    updateMeta();
    ticksSoon();
    if (followBox.checked) {
      followSoon();
      announceSoon(`New event: version ${ev.version}, ${ev.type}.`);
    } else {
      newer += 1;
      updateSlider();
      liveNote.textContent = `${newer} newer event${newer === 1 ? '' : 's'} (latest: version ${maxV}, ${ev.type}). Check “Follow live” or choose “Latest” to see ${newer === 1 ? 'it' : 'them'}.`;
    }
  }

  // A busy stream: at most a few revisions a second while following.
  const followSoon = throttle(() => {
    if (alive && followBox.checked) show(maxV);
  }, 250);
  const announceSoon = throttle(announce, 3000);

  function subscribe() {
    if (unsubscribe) unsubscribe();
    unsubscribe = ctx.live.subscribe(
      { query: S_STREAM, variables: () => ({ id: streamId, after: maxV }), endless: true },
      {
        next: onLive,
        error: (errs) => {
          if (alive) {
            render(liveNote, `Live updates stopped: ${errs.map((e) => e.message).join('; ')} `,
              h('button', { type: 'button', class: 'link', onclick: subscribe }, 'Restart'));
          }
        },
      },
    );
  }

  // --- jump to time

  async function versionAtTime(iso) {
    const key = timeKey(iso);
    let lo = 0; // newest version known recorded at or before the time (0: none)
    let hi = maxV + 1; // oldest version known recorded after it
    if (updatedAt && timeKey(updatedAt) <= key) return maxV;
    if (createdAt && timeKey(createdAt) > key) return 0;
    while (hi - lo > 1) {
      const n = Math.min(PROBES, hi - lo - 1);
      const probes = [...new Set(Array.from({ length: n }, (_, k) => lo + 1 + Math.floor(((hi - lo - 1) * k) / n)))];
      const data = await gql(timesQuery(probes), { id: streamId });
      const before = [lo, hi];
      for (let i = 0; i < probes.length; i++) {
        const node = data.stream && data.stream[`t${i}`].edges[0] && data.stream[`t${i}`].edges[0].node;
        if (!node) break;
        times.set(node.version, { recordedAt: node.recordedAt, type: node.type });
        if (timeKey(node.recordedAt) <= key) {
          lo = probes[i];
        } else {
          hi = probes[i];
          break;
        }
      }
      if (lo === before[0] && hi === before[1]) break; // no progress (the stream changed under us)
    }
    return lo;
  }

  async function jumpToTime(ev) {
    ev.preventDefault();
    const iso = fromLocalInput(jumpInput.value);
    if (!iso) {
      jumpResult.textContent = 'Enter a date and time.';
      jumpInput.focus();
      return;
    }
    jumpResult.textContent = 'Searching…';
    try {
      let v;
      if (orderId) {
        const data = await gql(Q_ORDER_AT_TIME, { oid: orderId, t: iso });
        v = data.order ? data.order.version : 0;
      } else {
        v = await versionAtTime(iso);
      }
      if (!alive) return;
      const when = fmtTime(new Date(iso), { ms: false });
      if (v === 0) {
        jumpResult.textContent = `At ${when} the ${orderId ? 'order' : 'stream'} did not exist yet; its first event is version 1.`;
        return;
      }
      jumpResult.textContent = `At ${when} the ${orderId ? 'order' : 'stream'} was at version ${v}.`;
      userShow(v);
      if (followBox.checked && v < maxV) followBox.checked = false;
    } catch (e) {
      if (alive) jumpResult.textContent = `Jump failed: ${e.message}`;
    }
  }

  // --- verify

  async function verify() {
    verifyButton.disabled = true;
    verifyButton.setAttribute('aria-busy', 'true');
    render(verifyResult, h('p', { class: 'muted' }, 'Verifying the hash chain…'));
    try {
      const data = await gql(Q_VERIFY, { id: streamId });
      if (!alive) return;
      const r = data.stream && data.stream.verify;
      if (!r) throw new Error('the stream is gone');
      if (r.ok) {
        render(verifyResult, h('p', { class: 'ok', id: 'verify-ok' }, h('span', { 'aria-hidden': 'true' }, '✓ '),
          `Hash chain intact: ${r.checkedEvents} event${r.checkedEvents === 1 ? '' : 's'} checked.`));
      } else {
        render(verifyResult, h('p', { class: 'bad', id: 'verify-bad' }, h('span', { 'aria-hidden': 'true' }, '✗ '),
          `Hash chain broken${r.firstBrokenVersion ? ` at version ${r.firstBrokenVersion}` : ''}: ${r.reason || 'no reason given'} (${r.checkedEvents} checked). `,
          r.firstBrokenVersion ? h('button', { type: 'button', class: 'link', onclick: () => userShow(r.firstBrokenVersion) }, `Show version ${r.firstBrokenVersion}`) : null));
      }
    } catch (e) {
      if (alive) render(verifyResult, errorBox(e));
    } finally {
      verifyButton.disabled = false;
      verifyButton.removeAttribute('aria-busy');
    }
  }

  // --- open

  async function open() {
    try {
      const isOrder = !orderId && !forceJSON && streamId.startsWith(ORDER_STREAM_PREFIX) && streamId.length > ORDER_STREAM_PREFIX.length;
      const oid = orderId || (isOrder ? streamId.slice(ORDER_STREAM_PREFIX.length) : '');
      const data = await gql(Q_OPEN, { id: streamId, oid, isOrder });
      if (!alive) return;
      if (!data.stream) {
        render(root, title, errorBox(new Error(kind === 'order' ? `there is no order “${id}”` : `there is no stream “${id}”`)),
          h('p', {}, h('a', { href: '#/log' }, 'Back to the log')));
        return;
      }
      if (isOrder && data.order) orderId = oid;
      if (forceJSON) orderId = null;
      if (orderId) {
        title.textContent = `Order ${orderId}`;
        viewToggle.hidden = false;
        viewToggle.textContent = 'View as JSON stream';
        viewToggle.href = `#/stream/${encodeURIComponent(streamId)}?view=json`;
      } else if (streamId.startsWith(ORDER_STREAM_PREFIX) && forceJSON) {
        viewToggle.hidden = false;
        viewToggle.textContent = 'View as order';
        viewToggle.href = `#/order/${encodeURIComponent(streamId.slice(ORDER_STREAM_PREFIX.length))}`;
      }
      maxV = data.stream.version;
      createdAt = data.stream.createdAt;
      updatedAt = data.stream.updatedAt;
      jumpInput.value = toLocalInput(parseTime(updatedAt));
      updateMeta();
      const want = Number(search.get('v'));
      subscribe();
      await show(Number.isInteger(want) && want >= 1 ? want : maxV);
      loadTicks();
      loadEvents();
    } catch (e) {
      if (alive) render(errorSlot, errorBox(e));
    }
  }

  window.addEventListener('resize', onResize);
  open();

  return {
    unmount() {
      alive = false;
      clearTimeout(debounce);
      window.removeEventListener('resize', onResize);
      if (unsubscribe) unsubscribe();
    },
  };
}
