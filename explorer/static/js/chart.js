// Charts as inline SVG, time on x: line charts (each series drawn with its
// own dash pattern) and stacked step charts of counts (each band a count
// that holds until the next point). Every series is labelled at its end
// with its name and last value, so that colour is never the only key.

import { fmtTick } from './format.js';
import { uid } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c != null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A "nice" step (1, 2 or 5 × 10^k) giving about n intervals over span. */
function niceStep(span, n) {
  if (span <= 0) return 1;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/** The frame shared by the charts: svg, scales, grid, axes. */
function frame({ title, desc, xs, ymaxRaw, yFormat, integer, width, height }) {
  const m = { l: 64, r: 120, t: 14, b: 34 };
  const w = width - m.l - m.r;
  const hgt = height - m.t - m.b;
  const x0 = xs.length ? xs[0].getTime() : 0;
  const x1 = xs.length ? xs[xs.length - 1].getTime() : 1;
  const xspan = Math.max(1, x1 - x0);
  let ystep = niceStep(ymaxRaw || 1, 4);
  if (integer) ystep = Math.max(1, Math.round(ystep));
  const ymax = Math.max(ystep, Math.ceil(ymaxRaw / ystep) * ystep);
  const X = (t) => m.l + ((t - x0) / xspan) * w;
  const Y = (v) => m.t + hgt - (v / ymax) * hgt;

  const titleId = uid('chart-title');
  const descId = uid('chart-desc');
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': `${titleId} ${descId}`,
    class: 'chart', preserveAspectRatio: 'xMidYMid meet',
  }, s('title', { id: titleId }, title), s('desc', { id: descId }, desc));

  // y grid and labels
  const grid = s('g', { class: 'grid' });
  for (let v = 0; v <= ymax + ystep / 1e6; v += ystep) {
    grid.append(s('line', { x1: m.l, x2: m.l + w, y1: Y(v), y2: Y(v) }));
    grid.append(s('text', { x: m.l - 8, y: Y(v), 'text-anchor': 'end', 'dominant-baseline': 'middle', class: 'axis-label' }, yFormat(v)));
  }
  svg.append(grid);

  // x labels
  const xt = s('g', { class: 'x-axis' });
  const nx = Math.min(Math.max(2, Math.floor(w / 110)), xs.length);
  for (let k = 0; k < nx; k++) {
    const t = nx === 1 ? x0 : x0 + (xspan * k) / (nx - 1);
    xt.append(s('line', { x1: X(t), x2: X(t), y1: m.t + hgt, y2: m.t + hgt + 5, class: 'tick' }));
    xt.append(s('text', {
      x: X(t), y: m.t + hgt + 20, class: 'axis-label',
      'text-anchor': k === 0 ? 'start' : k === nx - 1 ? 'end' : 'middle',
    }, fmtTick(new Date(t), xspan)));
  }
  svg.append(xt);
  return { svg, m, w, hgt, X, Y, axis: () => svg.append(s('line', { x1: m.l, x2: m.l + w, y1: m.t + hgt, y2: m.t + hgt, class: 'axis' })) };
}

/** Labels at the right end, at the wanted heights, pushed apart so that they do not overlap. */
function endLabels(f, ends, yFormat) {
  const gap = 13;
  ends.sort((a, b) => a.y - b.y);
  for (let i = 1; i < ends.length; i++) ends[i].y = Math.max(ends[i].y, ends[i - 1].y + gap);
  const bottom = f.m.t + f.hgt + 4;
  if (ends.length && ends[ends.length - 1].y > bottom) {
    ends[ends.length - 1].y = bottom;
    for (let i = ends.length - 2; i >= 0; i--) ends[i].y = Math.min(ends[i].y, ends[i + 1].y - gap);
  }
  for (const e of ends) {
    f.svg.append(s('text', { x: f.m.l + f.w + 8, y: e.y, 'dominant-baseline': 'middle', class: 'series-label', fill: e.se.color },
      `${e.se.name} ${yFormat(e.last)}`));
  }
}

/**
 * lineChart({title, desc, xs: Date[], series: [{name, values, color, dash}], yFormat, integer})
 * returns an <svg role="img"> named by its <title> and <desc>.
 */
export function lineChart({ title, desc, xs, series, yFormat = String, integer = false, width = 760, height = 260 }) {
  const ymaxRaw = Math.max(0, ...series.flatMap((se) => se.values));
  const f = frame({ title, desc, xs, ymaxRaw, yFormat, integer, width, height });
  const { X, Y } = f;
  f.axis();
  const ends = [];
  for (const se of series) {
    const pts = se.values.map((v, i) => `${X(xs[i].getTime()).toFixed(1)},${Y(v).toFixed(1)}`).join(' ');
    const g = s('g', { class: 'series' });
    g.append(s('polyline', { points: pts, fill: 'none', stroke: se.color, 'stroke-width': 2.25, 'stroke-dasharray': se.dash || null, 'stroke-linejoin': 'round' }));
    if (xs.length <= 60) {
      se.values.forEach((v, i) => g.append(s('circle', { cx: X(xs[i].getTime()), cy: Y(v), r: 2.5, fill: se.color })));
    }
    f.svg.append(g);
    const last = se.values[se.values.length - 1] ?? 0;
    ends.push({ y: Y(last), se, last });
  }
  endLabels(f, ends, yFormat);
  return f.svg;
}

/**
 * stackedStepChart({title, desc, xs: Date[], series: [{name, values, color}]})
 * draws counts stacked in series order, the first at the bottom: at each
 * point the bands' heights are the counts, held until the next point, so
 * the top edge is the total. Bands are separated by a white line, and each
 * is labelled at its end with its name and last count.
 */
export function stackedStepChart({ title, desc, xs, series, yFormat = String, width = 760, height = 260 }) {
  const n = xs.length;
  const totals = xs.map((_, i) => series.reduce((sum, se) => sum + (se.values[i] || 0), 0));
  const f = frame({ title, desc, xs, ymaxRaw: Math.max(0, ...totals), yFormat, integer: true, width, height });
  const { X, Y } = f;
  const xAt = (i) => X(xs[Math.min(i, n - 1)].getTime());
  const base = xs.map(() => 0);
  const ends = [];
  for (const se of series) {
    const top = base.map((b, i) => b + (se.values[i] || 0));
    // The top edge left to right, then the bottom edge back: each value
    // runs flat from its point to the next one.
    const pts = [];
    for (let i = 0; i < n; i++) pts.push([xAt(i), Y(top[i])], [xAt(i + 1), Y(top[i])]);
    for (let i = n - 1; i >= 0; i--) pts.push([xAt(i + 1), Y(base[i])], [xAt(i), Y(base[i])]);
    f.svg.append(s('polygon', {
      class: 'band', points: pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' '),
      fill: se.color, 'fill-opacity': 0.8, stroke: '#fff', 'stroke-width': 1,
    }, s('title', {}, se.name)));
    const last = se.values[n - 1] ?? 0;
    ends.push({ y: Y((base[n - 1] + top[n - 1]) / 2), se, last });
    for (let i = 0; i < n; i++) base[i] = top[i];
  }
  f.axis();
  endLabels(f, ends, yFormat);
  return f.svg;
}
