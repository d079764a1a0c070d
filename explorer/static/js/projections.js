// Declarative projections (issue 19): the definitions and their versions, a
// table of a projection's partitions at a chosen time (with a jq filter on
// the state), and one partition through time with a version slider.
//
//   #/projections                         the list of definitions
//   #/projections/<name>?at=<local>&f=jq  one projection, its partitions at a time
//   #/projections/<name>?key=<k>&v=N      ... and one partition at version N

import { h, render, announce, errorBox } from './dom.js';
import { gql } from './api.js';
import { fmtInt, fmtTime, fromLocalInput, jsonPreview } from './format.js';
import { jsonTree } from './jsontree.js';

const VERSION_FIELDS = `version status progress checkpoint partitions definedAt streamPrefix eventTypes partitionBy reducer
  initialState fault { kind message position streamId eventType }`;
const Q_LIST = `query Projections { definedProjections { name activeVersion versions { ${VERSION_FIELDS} } } }`;
const Q_ONE = `query Projection($name: String!) { projection(name: $name) { name activeVersion versions { ${VERSION_FIELDS} } } }`;
const Q_PAGE = `query Partitions($name: String!, $at: PointInTime, $filter: String, $after: String) {
  projectionPartitions(name: $name, at: $at, filter: $filter, first: 50, after: $after) {
    totalCount position definitionVersion pageInfo { hasNextPage endCursor }
    edges { node { key version position recordedAt state } } } }`;
const S_CHANGED = `subscription PartitionChanged($name: String!, $key: String, $after: Position) {
  projectionChanged(name: $name, key: $key, afterPosition: $after) { version position } }`;
const Q_STATE = `query PartitionState($name: String!, $key: String!, $at: PointInTime) {
  projectionState(name: $name, key: $key, at: $at) { key version position recordedAt state definitionVersion } }`;

function statusText(v) {
  if (v.status === 'BUILDING') return `building ${Math.floor(v.progress * 100)}%`;
  return v.status.toLowerCase();
}

function versionsTable(versions) {
  return h('table', { class: 'table' },
    h('caption', { class: 'sr-only' }, 'Versions'),
    h('thead', {}, h('tr', {}, ['Version', 'Status', 'Defined', 'Reads', 'Partition key', 'Reducer', 'Checkpoint', 'Partitions']
      .map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, versions.slice().reverse().map((v) => h('tr', {},
      h('td', {}, String(v.version)),
      h('td', {}, statusText(v), v.fault ? h('div', { class: 'error small' },
        `${v.fault.kind} at position ${v.fault.position} (${v.fault.streamId}, ${v.fault.eventType}): ${v.fault.message}`) : null),
      h('td', {}, fmtTime(v.definedAt, { ms: false })),
      h('td', {}, h('code', {}, `${v.streamPrefix || '(all streams)'}*`), v.eventTypes.length ? ` ${v.eventTypes.join(', ')}` : ''),
      h('td', {}, h('code', {}, v.partitionBy || 'stream id')),
      h('td', {}, h('code', { class: 'small' }, v.reducer)),
      h('td', {}, v.checkpoint),
      h('td', {}, fmtInt(v.partitions))))));
}

function mountList(root) {
  let alive = true;
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  render(root, h('h2', { id: 'view-title', tabindex: '-1' }, 'Projections'),
    h('p', { class: 'muted' }, 'Read models defined with jq (defineProjection); each keeps every partition at every point in time.'),
    body);
  gql(Q_LIST).then((d) => {
    if (!alive) return;
    const list = d.definedProjections;
    if (!list.length) {
      render(body, h('p', {}, 'No projection is defined yet. See the README, "Declarative projections".'));
      return;
    }
    render(body, list.map((p) => h('section', { class: 'card' },
      h('h3', {}, h('a', { href: `#/projections/${encodeURIComponent(p.name)}` }, p.name),
        ' ', h('span', { class: 'muted small' }, p.activeVersion ? `version ${p.activeVersion} answers` : 'not built yet')),
      versionsTable(p.versions))));
  }).catch((e) => { if (alive) render(body, errorBox(e)); });
  return { unmount() { alive = false; } };
}

function mountOne(root, name, search, ctx) {
  let alive = true;
  const atInput = h('input', { id: 'proj-at', type: 'datetime-local', step: '1', value: search.get('at') || '' });
  const filterInput = h('input', { id: 'proj-filter', type: 'text', spellcheck: 'false', placeholder: '.total > 100', value: search.get('f') || '' });
  const versions = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const table = h('div', { id: 'proj-table' });
  const partition = h('div', { id: 'proj-partition' });
  const form = h('form', { class: 'filters' },
    h('label', { for: 'proj-at' }, 'At'), ' ', atInput, ' ',
    h('label', { for: 'proj-filter' }, 'Filter (jq on the state)'), ' ', filterInput, ' ',
    h('button', { type: 'submit' }, 'Show'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    if (atInput.value) q.set('at', atInput.value);
    if (filterInput.value.trim()) q.set('f', filterInput.value.trim());
    ctx.navigate(`#/projections/${encodeURIComponent(name)}?${q}`);
  });
  render(root,
    h('p', {}, h('a', { href: '#/projections' }, '← All projections')),
    h('h2', { id: 'view-title', tabindex: '-1' }, `Projection ${name}`),
    versions,
    h('h3', {}, 'Partitions'), form, table, partition);

  gql(Q_ONE, { name }).then((d) => {
    if (!alive) return;
    if (!d.projection) render(versions, h('p', { class: 'error', role: 'alert' }, `No projection ${name}.`));
    else render(versions, versionsTable(d.projection.versions));
  }).catch((e) => { if (alive) render(versions, errorBox(e)); });

  const time = fromLocalInput(atInput.value);
  const at = time ? { time } : null;
  const filter = filterInput.value.trim() || null;
  const rows = h('tbody', {});
  const info = h('p', { class: 'muted', role: 'status' });
  const more = h('button', { type: 'button', hidden: true }, 'More');
  let after = null;
  async function page() {
    try {
      const d = await gql(Q_PAGE, { name, at, filter, after });
      if (!alive) return;
      const c = d.projectionPartitions;
      for (const { node } of c.edges) {
        const q = new URLSearchParams(search);
        q.set('key', node.key);
        q.set('v', String(node.version));
        rows.append(h('tr', {},
          h('td', {}, h('a', { href: `#/projections/${encodeURIComponent(name)}?${q}` }, node.key)),
          h('td', {}, String(node.version)),
          h('td', {}, fmtTime(node.recordedAt)),
          h('td', {}, h('code', {}, jsonPreview(node.state)))));
      }
      info.textContent = `${fmtInt(c.totalCount)} partition${c.totalCount === 1 ? '' : 's'} at position ${c.position}${time ? ` (${fmtTime(time, { ms: false })})` : ' (now)'}, definition version ${c.definitionVersion}.`;
      after = c.pageInfo.endCursor;
      more.hidden = !c.pageInfo.hasNextPage;
      announce(info.textContent);
    } catch (e) {
      if (alive) render(table, errorBox(e));
    }
  }
  more.addEventListener('click', page);
  render(table, info, h('table', { class: 'table' },
    h('caption', { class: 'sr-only' }, 'Partitions'),
    h('thead', {}, h('tr', {}, ['Key', 'Version', 'Last event', 'State'].map((c) => h('th', { scope: 'col' }, c)))),
    rows), more);
  page();

  const key = search.get('key');
  const cleanup = [];
  if (key) showPartition(partition, name, key, Number(search.get('v')) || 0, () => alive, ctx, cleanup);
  return {
    unmount() {
      alive = false;
      for (const f of cleanup) f();
    },
  };
}

// One partition with a slider over its versions, like the order view's, a
// jump to a time, and live updates of the slider's range.
async function showPartition(root, name, key, wanted, isAlive, ctx, cleanup) {
  const slider = h('input', { id: 'proj-slider', type: 'range', min: '1', max: '1', step: '1', value: '1' });
  const out = h('output', { id: 'proj-slider-out', for: 'proj-slider' });
  const state = h('div', { id: 'proj-state' });
  const timeInput = h('input', { id: 'proj-key-at', type: 'datetime-local', step: '1' });
  const timeForm = h('form', { class: 'filters' },
    h('label', { for: 'proj-key-at' }, 'Version at time'), ' ', timeInput, ' ', h('button', { type: 'submit' }, 'Go'));
  render(root, h('h3', {}, `Partition ${key}`),
    h('div', { class: 'slider-head' }, h('label', { for: 'proj-slider' }, 'Version'), ' ', out),
    h('div', { class: 'slider-wrap' }, slider), timeForm, state);
  let latest;
  try {
    const d = await gql(Q_STATE, { name, key, at: null });
    latest = d.projectionState;
  } catch (e) {
    if (isAlive()) render(state, errorBox(e));
    return;
  }
  if (!isAlive()) return;
  if (!latest) {
    render(state, h('p', {}, 'This partition does not exist now.'));
    return;
  }
  let max = latest.version;
  slider.max = String(max);
  slider.disabled = max <= 1;
  let seq = 0;
  async function show(v) {
    const mine = ++seq;
    slider.value = String(v);
    out.textContent = `${v} of ${max}`;
    try {
      const d = await gql(Q_STATE, { name, key, at: { version: v } });
      if (!isAlive() || mine !== seq) return;
      const p = d.projectionState;
      render(state, h('p', { class: 'muted' }, `Version ${p.version}, position ${p.position}, ${fmtTime(p.recordedAt)} (definition version ${p.definitionVersion})`),
        jsonTree(p.state, `State of ${key} at version ${p.version}`));
    } catch (e) {
      if (isAlive() && mine === seq) render(state, errorBox(e));
    }
  }
  slider.addEventListener('input', () => { out.textContent = `${slider.value} of ${max}`; });
  slider.addEventListener('change', () => show(Number(slider.value)));
  timeForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const time = fromLocalInput(timeInput.value);
    if (!time) return;
    try {
      const d = await gql(Q_STATE, { name, key, at: { time } });
      if (!isAlive()) return;
      if (d.projectionState) show(d.projectionState.version);
      else render(state, h('p', { role: 'status' }, 'The partition did not exist at that time.'));
    } catch (e) {
      if (isAlive()) render(state, errorBox(e));
    }
  });
  // Live: new versions extend the slider; a slider at the latest follows.
  cleanup.push(ctx.live.subscribe(
    { query: S_CHANGED, variables: () => ({ name, key, after: latest.position }), endless: true },
    {
      next: (payload) => {
        const c = payload && payload.data && payload.data.projectionChanged;
        if (!c || !isAlive() || c.version <= max) return;
        const atLatest = Number(slider.value) === max;
        max = c.version;
        latest = { ...latest, version: c.version, position: c.position };
        slider.max = String(max);
        slider.disabled = max <= 1;
        if (atLatest) show(max);
        else out.textContent = `${slider.value} of ${max}`;
      },
      error: () => {},
    },
  ));
  show(wanted >= 1 && wanted <= max ? wanted : max);
}

export function mount(root, { name, search }, ctx) {
  return name ? mountOne(root, name, search, ctx) : mountList(root);
}
