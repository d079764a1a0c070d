// The explorer's entry point: the hash router, the header, and the one
// websocket client every view subscribes through.
//
//   #/log?types=A,B&prefix=p   the global log, newest first
//   #/stream/<id>?v=N          a stream at version N (orders get the typed view)
//   #/order/<id>?v=N           an order at version N
//   #/dashboard?at=<local>     the orders dashboard
//   #/projections[/<name>]     declarative projections (js/projections.js)

import { WsClient } from './js/ws.js';
import { wsURL } from './js/api.js';
import { token, requireToken, onTokenChange, forgetToken } from './js/auth.js';
import { announce } from './js/dom.js';
import * as logView from './js/log.js';
import * as streamView from './js/stream.js';
import * as dashboardView from './js/dashboard.js';
import * as projectionsView from './js/projections.js';

const STATUS_TEXT = {
  idle: () => 'Live: off',
  connecting: () => 'Live: connecting…',
  connected: () => 'Live: connected',
  waiting: (s) => `Live: reconnecting in ${Math.ceil(s.retryIn / 1000)} s${s.reason ? ` (${s.reason})` : ''}`,
  unauthorized: () => 'Live: needs an access token',
  failed: (s) => `Live: stopped${s.reason ? ` (${s.reason})` : ''}`,
};

const conn = document.getElementById('conn');
const connText = document.getElementById('conn-text');
let lastState = 'idle';

function showStatus(s) {
  conn.dataset.state = s.state;
  connText.textContent = (STATUS_TEXT[s.state] || (() => s.state))(s);
  // Say only the changes that matter, not every connect.
  if (s.state !== lastState && (s.state === 'waiting' || s.state === 'unauthorized' || s.state === 'failed'
    || (s.state === 'connected' && (lastState === 'waiting' || lastState === 'unauthorized')))) {
    announce(connText.textContent);
  }
  lastState = s.state;
}

const live = new WsClient({
  url: wsURL(),
  connectionParams: () => (token() ? { Authorization: `Bearer ${token()}` } : {}),
  onAuthFailure: (code) => requireToken(code === 4403
    ? 'The server refused live updates for this token (forbidden). Enter another token.'
    : 'Live updates need a valid access token.'),
  onStatus: showStatus,
});

// For debugging from the console, and for the browser test (which drops the
// connection to check that live views resume).
window.hindsightExplorer = { live };

const tokenButton = document.getElementById('token-button');
function showToken() {
  tokenButton.hidden = !token();
}
tokenButton.addEventListener('click', () => {
  forgetToken();
  live.reconnect();
});
onTokenChange(() => {
  showToken();
  if (live.state === 'unauthorized' || live.state === 'connected') live.reconnect();
});
showToken();

function navigate(hash) {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

document.getElementById('open-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const id = document.getElementById('open-id').value.trim();
  if (!id) return;
  const kind = document.getElementById('open-kind').value;
  navigate(`#/${kind}/${encodeURIComponent(id)}`);
});

const viewEl = document.getElementById('view');
let current = null;
let first = true;

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const search = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  const [view, ...rest] = path.split('/');
  let arg = rest.join('/');
  try {
    arg = decodeURIComponent(arg);
  } catch {
    // keep it raw
  }
  return { view: view || 'log', arg, search };
}

function route() {
  if (current) current.unmount();
  current = null;
  viewEl.replaceChildren();
  const { view, arg, search } = parseHash();
  const ctx = { live, navigate };
  let name = view;
  switch (view) {
    case 'stream':
    case 'order':
      if (!arg) {
        navigate('#/log');
        return;
      }
      current = streamView.mount(viewEl, { kind: view, id: arg, search }, ctx);
      name = 'log';
      break;
    case 'dashboard':
      current = dashboardView.mount(viewEl, search, ctx);
      break;
    case 'projections':
      current = projectionsView.mount(viewEl, { name: arg, search }, ctx);
      break;
    default:
      current = logView.mount(viewEl, search, ctx);
      name = 'log';
  }
  for (const a of document.querySelectorAll('nav a[data-view]')) {
    if (a.dataset.view === name && (view === 'dashboard' || view === 'projections' || view === 'log' || view === '')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const title = document.getElementById('view-title');
  document.title = `${title ? title.textContent : 'Hindsight'} — Hindsight explorer`;
  // After a navigation, move focus to the new view's heading so that
  // keyboard and screen reader users start there; not on the first load.
  if (!first && title) title.focus();
  first = false;
}

window.addEventListener('hashchange', route);
route();
