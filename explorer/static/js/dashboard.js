// The orders dashboard: counts by status and revenue at a chosen time (now
// by default, kept current by a subscription), and their course over a
// range drawn as inline SVG.

import { h, render, announce, errorBox, throttle } from './dom.js';
import { gql, ORDER_STREAM_PREFIX } from './api.js';
import { fmtInt, fmtMoney, fmtTime, fromLocalInput, toLocalInput, TIME_INPUT, parseTime, fmtTick } from './format.js';
import { lineChart, stackedStepChart } from './chart.js';

export const STATUSES = ['DRAFT', 'PLACED', 'PAID', 'SHIPPED', 'CANCELLED'];
// Colours with at least 4.5:1 contrast on white; the chart also labels each
// band, so colour is not the only difference.
const STYLE = {
  DRAFT: { color: '#4b5563' },
  PLACED: { color: '#1d4ed8' },
  PAID: { color: '#047857' },
  SHIPPED: { color: '#6d28d9' },
  CANCELLED: { color: '#b91c1c' },
};
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];
const MAX_POINTS = 1000; // the server's limit

const STATS_FIELDS = 'at position revenueCents countByStatus { status count }';
const Q_STATS = `query Stats($at: PointInTime) { orderStats(at: $at) { ${STATS_FIELDS} } }`;
const Q_SERIES = `query Series($from: Time!, $to: Time!, $step: Int!) { orderStatsSeries(from: $from, to: $to, stepSeconds: $step) { ${STATS_FIELDS} } }`;
const Q_FIRST = `query FirstOrderEvent($prefix: String) { events(afterPosition: "0", streamPrefix: $prefix, first: 1) { edges { node { recordedAt } } } }`;
const S_ORDERS = `subscription OrderEvents($prefix: String) { events(streamPrefix: $prefix) { position } }`;

function counts(stats) {
  const c = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const { status, count } of stats.countByStatus) c[status] = count;
  return c;
}

/** The smallest step of STEPS giving at most target points over span seconds. */
export function autoStep(spanSeconds, target = 60) {
  for (const s of STEPS) if (spanSeconds / s <= target) return s;
  return Math.ceil(spanSeconds / target);
}

export function mount(root, search, ctx) {
  let alive = true;
  let unsubscribe = null;

  const atInput = h('input', { id: 'stats-at', ...TIME_INPUT, value: search.get('at') || '', 'aria-describedby': 'stats-at-hint' });
  const asOf = h('p', { id: 'stats-asof', class: 'muted', role: 'status' });
  const cards = h('dl', { class: 'cards', id: 'stats-cards' });
  const statsError = h('div', {});
  const fromInput = h('input', { id: 'series-from', ...TIME_INPUT, required: true });
  const toInput = h('input', { id: 'series-to', ...TIME_INPUT, required: true });
  const stepSelect = h('select', { id: 'series-step' },
    h('option', { value: 'auto' }, 'Automatic'),
    [[1, '1 second'], [10, '10 seconds'], [60, '1 minute'], [300, '5 minutes'], [900, '15 minutes'], [3600, '1 hour'], [21600, '6 hours'], [86400, '1 day'], [604800, '1 week']]
      .map(([v, l]) => h('option', { value: v }, l)));
  const charts = h('div', { id: 'charts', class: 'charts' });
  const seriesInfo = h('p', { class: 'muted', id: 'series-info', role: 'status' });

  render(
    root,
    h('h2', { id: 'view-title', tabindex: '-1' }, 'Orders dashboard'),
    h('p', { class: 'lede' }, 'Orders by status and revenue (the total of paid and shipped orders), now or as they were at any time.'),
    h('form', { class: 'filters', id: 'stats-form', onsubmit: (e) => { e.preventDefault(); loadStats(); } },
      h('div', { class: 'field' }, h('label', { for: 'stats-at' }, 'As of'), atInput,
        h('small', { id: 'stats-at-hint', class: 'muted' }, 'Leave empty for now (kept live).')),
      h('div', { class: 'buttons' },
        h('button', { type: 'submit' }, 'Show'),
        h('button', { type: 'button', class: 'secondary', onclick: () => { atInput.value = ''; loadStats(); } }, 'Now'))),
    asOf,
    statsError,
    cards,
    h('section', { 'aria-labelledby': 'series-h', class: 'series' },
      h('h3', { id: 'series-h' }, 'Over time'),
      h('form', { class: 'filters', id: 'series-form', onsubmit: (e) => { e.preventDefault(); loadSeries(); } },
        h('div', { class: 'field' }, h('label', { for: 'series-from' }, 'From'), fromInput),
        h('div', { class: 'field' }, h('label', { for: 'series-to' }, 'To'), toInput),
        h('div', { class: 'field' }, h('label', { for: 'series-step' }, 'Step'), stepSelect),
        h('div', { class: 'buttons' }, h('button', { type: 'submit' }, 'Draw'))),
      seriesInfo,
      charts),
  );

  function drawCards(st) {
    const c = counts(st);
    render(cards,
      STATUSES.map((s) => h('div', { class: `card status-card-${s}`, dataset: { status: s } },
        h('dt', {}, h('span', { class: `badge status-${s}` }, s)),
        h('dd', { id: `count-${s}` }, fmtInt(c[s])))),
      h('div', { class: 'card revenue' }, h('dt', {}, 'Revenue'), h('dd', { id: 'revenue', dataset: { cents: st.revenueCents } }, fmtMoney(st.revenueCents))));
  }

  async function loadStats() {
    const iso = fromLocalInput(atInput.value);
    const q = new URLSearchParams(search);
    if (atInput.value) q.set('at', atInput.value);
    else q.delete('at');
    const qs = q.toString();
    history.replaceState(null, '', `#/dashboard${qs ? `?${qs}` : ''}`);
    try {
      const data = await gql(Q_STATS, { at: iso ? { time: iso } : null });
      if (!alive) return;
      const st = data.orderStats;
      drawCards(st);
      render(statsError);
      asOf.textContent = `${iso ? 'As of' : 'Now, live:'} ${fmtTime(st.at, { ms: false })} (log position ${st.position}).`;
      if (!iso) subscribe();
      else if (unsubscribe) {
        unsubscribe();
        unsubscribe = null;
      }
    } catch (e) {
      if (alive) render(statsError, errorBox(e));
    }
  }
  const refresh = throttle(() => {
    if (alive && !atInput.value) loadStats();
  }, 1000);

  function subscribe() {
    if (unsubscribe) return;
    unsubscribe = ctx.live.subscribe({ query: S_ORDERS, variables: { prefix: ORDER_STREAM_PREFIX }, endless: true }, {
      next: refresh,
      error: () => {
        unsubscribe = null;
      },
    });
  }

  async function loadSeries() {
    const from = fromLocalInput(fromInput.value);
    const to = fromLocalInput(toInput.value);
    if (!from || !to || from >= to) {
      seriesInfo.textContent = 'Choose a “from” time before the “to” time.';
      return;
    }
    const span = (Date.parse(to) - Date.parse(from)) / 1000;
    let step = stepSelect.value === 'auto' ? autoStep(span) : Number(stepSelect.value);
    if (span / step > MAX_POINTS - 1) step = Math.ceil(span / (MAX_POINTS - 1));
    // Points fall at from + k·step up to "to": move "to" onto the grid so
    // that the last point is not before it.
    const end = new Date(Date.parse(from) + Math.ceil(span / step) * step * 1000).toISOString();
    seriesInfo.textContent = 'Loading…';
    try {
      const data = await gql(Q_SERIES, { from, to: end, step });
      if (!alive) return;
      drawSeries(data.orderStatsSeries, step);
    } catch (e) {
      if (alive) {
        seriesInfo.textContent = '';
        render(charts, errorBox(e));
      }
    }
  }

  function drawSeries(points, step) {
    if (points.length === 0) {
      seriesInfo.textContent = 'No points in this range.';
      render(charts);
      return;
    }
    const xs = points.map((p) => parseTime(p.at));
    const cs = points.map(counts);
    const span = xs[xs.length - 1] - xs[0];
    const range = `${fmtTime(xs[0], { ms: false })} to ${fmtTime(xs[xs.length - 1], { ms: false })}`;
    seriesInfo.textContent = `${points.length} points, one every ${step} s, from ${range}.`;
    const last = points[points.length - 1];
    // As wide as the page: the SVG's own units match its pixels, so text
    // keeps its size.
    const width = Math.max(480, Math.round(charts.clientWidth || 760));
    const revenue = lineChart({
      title: 'Revenue over time',
      desc: `Revenue from ${fmtMoney(points[0].revenueCents)} to ${fmtMoney(last.revenueCents)}, ${range}.`,
      xs,
      series: [{ name: 'Revenue', values: points.map((p) => p.revenueCents / 100), color: '#047857' }],
      yFormat: (v) => fmtMoney(Math.round(v * 100)),
      width,
    });
    const byStatus = stackedStepChart({
      title: 'Orders by status over time',
      desc: `Counts of orders in each status, stacked; at the end: ${STATUSES.map((s) => `${s} ${cs[cs.length - 1][s]}`).join(', ')}.`,
      xs,
      series: STATUSES.map((s) => ({ name: s, values: cs.map((c) => c[s]), color: STYLE[s].color })),
      yFormat: (v) => fmtInt(v),
      width,
      height: 300,
    });
    const table = h('table', { class: 'data' },
      h('caption', { class: 'sr-only' }, 'Orders by status and revenue at each point'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Time'), STATUSES.map((s) => h('th', { scope: 'col', class: 'num' }, s)), h('th', { scope: 'col', class: 'num' }, 'Revenue'))),
      h('tbody', {}, points.map((p, i) => h('tr', {},
        h('th', { scope: 'row' }, h('time', { datetime: p.at }, fmtTick(xs[i], span < 120e3 ? 1000 : span))),
        STATUSES.map((s) => h('td', { class: 'num' }, fmtInt(cs[i][s]))),
        h('td', { class: 'num' }, fmtMoney(p.revenueCents))))));
    render(charts,
      h('figure', { id: 'chart-revenue' }, revenue, h('figcaption', {}, 'Revenue (paid and shipped orders)')),
      h('figure', { id: 'chart-status' }, byStatus, h('figcaption', {}, 'Orders by status: counts stacked, each held until the next point')),
      h('details', {}, h('summary', {}, 'The chart data as a table'), h('div', { class: 'table-wrap' }, table)));
    announce('Charts drawn.');
  }

  async function init() {
    loadStats();
    const now = new Date();
    let from = new Date(now.getTime() - 3600e3);
    try {
      const data = await gql(Q_FIRST, { prefix: ORDER_STREAM_PREFIX });
      const e = data.events.edges[0];
      if (e) from = parseTime(e.node.recordedAt);
    } catch {
      // keep the last hour
    }
    if (!alive) return;
    from = new Date(Math.floor(from.getTime() / 1000) * 1000);
    const to = new Date(Math.ceil(now.getTime() / 1000) * 1000 + 1000);
    fromInput.value = toLocalInput(from);
    toInput.value = toLocalInput(to);
    loadSeries();
  }
  init();

  return {
    unmount() {
      alive = false;
      if (unsubscribe) unsubscribe();
    },
  };
}
