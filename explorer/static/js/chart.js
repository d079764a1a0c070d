// Line charts as inline SVG: time on x, values on y, each series labelled at
// its end (not by colour alone) and drawn with its own dash pattern.

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

/**
 * lineChart({title, desc, xs: Date[], series: [{name, values, color, dash}], yFormat, integer})
 * returns an <svg role="img"> named by its <title> and <desc>.
 */
export function lineChart({ title, desc, xs, series, yFormat = String, integer = false, width = 760, height = 260 }) {
  const m = { l: 64, r: 110, t: 14, b: 34 };
  const w = width - m.l - m.r;
  const hgt = height - m.t - m.b;
  const x0 = xs.length ? xs[0].getTime() : 0;
  const x1 = xs.length ? xs[xs.length - 1].getTime() : 1;
  const xspan = Math.max(1, x1 - x0);
  const ymaxRaw = Math.max(0, ...series.flatMap((se) => se.values));
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
  const nx = Math.min(6, xs.length);
  for (let k = 0; k < nx; k++) {
    const t = nx === 1 ? x0 : x0 + (xspan * k) / (nx - 1);
    xt.append(s('line', { x1: X(t), x2: X(t), y1: m.t + hgt, y2: m.t + hgt + 5, class: 'tick' }));
    xt.append(s('text', {
      x: X(t), y: m.t + hgt + 20, class: 'axis-label',
      'text-anchor': k === 0 ? 'start' : k === nx - 1 ? 'end' : 'middle',
    }, fmtTick(new Date(t), xspan)));
  }
  xt.append(s('line', { x1: m.l, x2: m.l + w, y1: m.t + hgt, y2: m.t + hgt, class: 'axis' }));
  svg.append(xt);

  // series
  const ends = [];
  for (const se of series) {
    const pts = se.values.map((v, i) => `${X(xs[i].getTime()).toFixed(1)},${Y(v).toFixed(1)}`).join(' ');
    const g = s('g', { class: 'series' });
    g.append(s('polyline', { points: pts, fill: 'none', stroke: se.color, 'stroke-width': 2.25, 'stroke-dasharray': se.dash || null, 'stroke-linejoin': 'round' }));
    if (xs.length <= 60) {
      se.values.forEach((v, i) => g.append(s('circle', { cx: X(xs[i].getTime()), cy: Y(v), r: 2.5, fill: se.color })));
    }
    svg.append(g);
    const last = se.values[se.values.length - 1] ?? 0;
    ends.push({ y: Y(last), se, last });
  }
  // end labels, pushed apart so that they do not overlap
  const gap = 13;
  ends.sort((a, b) => a.y - b.y);
  for (let i = 1; i < ends.length; i++) ends[i].y = Math.max(ends[i].y, ends[i - 1].y + gap);
  const bottom = m.t + hgt + 4;
  if (ends.length && ends[ends.length - 1].y > bottom) {
    ends[ends.length - 1].y = bottom;
    for (let i = ends.length - 2; i >= 0; i--) ends[i].y = Math.min(ends[i].y, ends[i + 1].y - gap);
  }
  for (const e of ends) {
    svg.append(s('text', { x: m.l + w + 8, y: e.y, 'dominant-baseline': 'middle', class: 'series-label', fill: e.se.color },
      `${e.se.name} ${yFormat(e.last)}`));
  }
  return svg;
}
