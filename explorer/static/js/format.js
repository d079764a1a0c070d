// Formatting of times, money and JSON for display.

// The server sends RFC 3339 with nanoseconds; Date keeps milliseconds.
export function parseTime(iso) {
  if (!iso) return null;
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(iso);
  if (!m) return new Date(iso);
  const frac = m[2] ? m[2].slice(0, 4).padEnd(4, '0') : '';
  return new Date(m[1] + frac + m[3]);
}

/**
 * A sortable key of a UTC RFC 3339 time with full nanosecond precision:
 * "YYYY-MM-DDTHH:MM:SS.nnnnnnnnn". Only for times ending in Z (all server
 * output) or Dates.
 */
export function timeKey(t) {
  if (t instanceof Date) return `${t.toISOString().slice(0, 23)}000000`;
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(t);
  if (!m) return timeKey(parseTime(t));
  return `${m[1]}.${(m[2] || '').padEnd(9, '0').slice(0, 9)}`;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Local "YYYY-MM-DD HH:MM:SS.mmm". */
export function fmtTime(iso, { ms = true } = {}) {
  const d = iso instanceof Date ? iso : parseTime(iso);
  if (!d || Number.isNaN(d.getTime())) return '—';
  const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return ms ? `${s}.${pad(d.getMilliseconds(), 3)}` : s;
}

/** A short label for a time on an axis spanning spanMs. */
export function fmtTick(d, spanMs) {
  if (!(d instanceof Date)) d = parseTime(d);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  if (spanMs > 3 * 86400e3) return date;
  if (spanMs > 86400e3) return `${date.slice(5)} ${hm}`;
  if (spanMs > 120e3) return hm;
  if (spanMs > 5e3) return `${hm}:${pad(d.getSeconds())}`;
  return `${hm}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/**
 * Time inputs are text in the page's own 24-hour ISO form, local time,
 * "YYYY-MM-DD HH:MM:SS": a datetime-local input shows whatever the browser's
 * locale says (12-hour in en-US) and cannot be told otherwise.
 */
export const TIME_INPUT = {
  type: 'text', inputmode: 'numeric', autocomplete: 'off', spellcheck: 'false',
  placeholder: 'YYYY-MM-DD HH:MM:SS', pattern: '\\d{4}-\\d{2}-\\d{2}[ T]\\d{2}:\\d{2}(:\\d{2})?',
  title: '24-hour local time: YYYY-MM-DD HH:MM:SS',
};

/** A Date as a time input's value: local "YYYY-MM-DD HH:MM:SS". */
export function toLocalInput(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/**
 * RFC 3339 UTC of a time input's value, read as local time
 * ("YYYY-MM-DD HH:MM[:SS]", a T instead of the space too); null if empty or
 * not such a time.
 */
export function fromLocalInput(value) {
  const m = /^\s*(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})(:\d{2})?\s*$/.exec(value || '');
  if (!m) return null;
  const d = new Date(`${m[1]}T${m[2]}${m[3] || ':00'}`); // without an offset: local time
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
/** Cents as an amount with two decimals; the API has no currency. */
export function fmtMoney(cents) {
  return cents == null ? '—' : money.format(cents / 100);
}

const int = new Intl.NumberFormat();
export function fmtInt(n) {
  return n == null ? '—' : int.format(n);
}

/**
 * One-line JSON with a space after each comma and colon, so that a narrow
 * column wraps it between members rather than inside a word; cut to max
 * characters.
 */
export function jsonPreview(v, max = 140) {
  let s;
  try {
    // Indented output has line breaks only between tokens (a string's own
    // line breaks are escaped), so joining its lines with a space keeps
    // every value intact.
    s = JSON.stringify(v, null, 1);
    if (s !== undefined) s = s.replace(/([[{])\n */g, '$1').replace(/\n *([\]}])/g, '$1').replace(/\n */g, ' ');
  } catch {
    s = String(v);
  }
  if (s === undefined) s = 'undefined';
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** A human "x ago" for a Date relative to now. */
export function ago(d) {
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  if (s < 5) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}
