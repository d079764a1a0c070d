// A small client of the graphql-transport-ws protocol (the one of the
// graphql-ws package) on the browser's own WebSocket:
//
//   connection_init (payload: {Authorization: "Bearer …"}) → connection_ack
//   subscribe {id, payload: {query, variables}} → next* → complete | error
//   ping ⇄ pong, both ways
//
// One connection carries every subscription of the page. It opens on the
// first subscribe and closes a few seconds after the last one ends. When it
// drops, it reconnects with exponential backoff and jitter, and subscribes
// again with fresh variables: each subscription gives its variables as a
// function, so that it resumes from the last position (or version) it saw,
// and the server's exactly-once guarantee makes the resume gap-free.

const PROTOCOL = 'graphql-transport-ws';
const ACK_TIMEOUT = 10_000; // ms to wait for connection_ack
const PING_EVERY = 20_000; // ms of silence before the client pings
const PONG_TIMEOUT = 10_000; // ms for any answer to that ping
const BACKOFF_MIN = 500;
const BACKOFF_MAX = 30_000;
const LAZY_CLOSE = 3_000; // ms with no subscription before closing
// Close codes after which reconnecting cannot help.
const FATAL = new Set([4400, 4406, 4409, 4413]);
// Close codes of a refused credential (HTTP status + 4000).
const UNAUTHORIZED = 4401;
const FORBIDDEN = 4403;
// Subscription errors worth a new subscription from the last point seen.
const RETRYABLE = new Set(['SUBSCRIBER_TOO_SLOW', 'STORE_UNAVAILABLE', 'PROJECTION_LAGGING', 'RATE_LIMITED']);

export class WsClient {
  /**
   * @param {object} o
   * @param {string} o.url             ws:// or wss:// URL
   * @param {() => object} o.connectionParams  the connection_init payload, read at each connect
   * @param {(code: number, reason: string) => Promise<void>} o.onAuthFailure
   *        resolves when a new credential is available (reconnect now), rejects to stay offline
   * @param {(status: object) => void} o.onStatus  {state, attempt, retryIn, reason}
   */
  constructor({ url, connectionParams = () => ({}), onAuthFailure = null, onStatus = () => {} }) {
    this.url = url;
    this.connectionParams = connectionParams;
    this.onAuthFailure = onAuthFailure;
    this.onStatus = onStatus;
    this.subs = new Map(); // id → {request, sink, live}
    this.nextId = 1;
    this.ws = null;
    this.acked = false;
    this.attempt = 0;
    this.timers = {};
    this.state = 'idle';
    this.onOnline = () => {
      if (this.state === 'waiting') this.connectNow();
    };
    window.addEventListener('online', this.onOnline);
  }

  /**
   * Starts a subscription. request: {query, variables: object | () => object,
   * endless}: an endless one (a live feed) that the server completes is
   * started again, with fresh variables.
   * sink: {next(payload), error(errors), complete(), retry(errors)?}.
   * Returns a function that ends it.
   */
  subscribe(request, sink) {
    const id = String(this.nextId++);
    const sub = { id, request, sink, retryTimer: null, retries: 0 };
    this.subs.set(id, sub);
    clearTimeout(this.timers.lazy);
    if (this.acked) this.sendSubscribe(sub);
    else if (!this.ws && this.state !== 'waiting' && this.state !== 'unauthorized') this.connect();
    return () => this.unsubscribe(id);
  }

  unsubscribe(id) {
    const sub = this.subs.get(id);
    if (!sub) return;
    clearTimeout(sub.retryTimer);
    this.subs.delete(id);
    if (this.acked) this.send({ id, type: 'complete' });
    if (this.subs.size === 0) {
      clearTimeout(this.timers.lazy);
      this.timers.lazy = setTimeout(() => {
        if (this.subs.size === 0) this.shutdown('idle');
      }, LAZY_CLOSE);
    }
  }

  /** Closes the connection and forgets every subscription. */
  dispose() {
    window.removeEventListener('online', this.onOnline);
    for (const sub of this.subs.values()) clearTimeout(sub.retryTimer);
    this.subs.clear();
    this.shutdown('disposed');
  }

  /** Reconnects at once, for example after the token changed. */
  reconnect() {
    this.attempt = 0;
    this.drop();
    if (this.subs.size > 0) this.connect();
  }

  // --- internals

  status(state, extra = {}) {
    this.state = state;
    this.onStatus({ state, attempt: this.attempt, ...extra });
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  variables(sub) {
    const v = sub.request.variables;
    return typeof v === 'function' ? v() : v || {};
  }

  sendSubscribe(sub) {
    this.send({
      id: sub.id,
      type: 'subscribe',
      payload: { query: sub.request.query, variables: this.variables(sub) },
    });
  }

  connectNow() {
    clearTimeout(this.timers.retry);
    this.attempt = 0;
    this.connect();
  }

  connect() {
    clearTimeout(this.timers.retry);
    this.status('connecting');
    let ws;
    try {
      ws = new WebSocket(this.url, PROTOCOL);
    } catch (e) {
      this.scheduleReconnect(e.message);
      return;
    }
    this.ws = ws;
    this.acked = false;
    ws.onopen = () => {
      if (ws.protocol !== PROTOCOL) {
        this.drop(1002, 'the server did not accept graphql-transport-ws');
        this.scheduleReconnect('the server did not accept graphql-transport-ws');
        return;
      }
      let payload;
      try {
        payload = this.connectionParams() || {};
      } catch {
        payload = {};
      }
      this.send({ type: 'connection_init', payload });
      this.timers.ack = setTimeout(() => {
        this.drop(4504, 'connection_ack timeout');
        this.scheduleReconnect('the server did not acknowledge the connection');
      }, ACK_TIMEOUT);
    };
    ws.onmessage = (ev) => this.onMessage(ev);
    ws.onclose = (ev) => this.onClose(ev);
    // onerror is always followed by onclose, which handles it.
  }

  onMessage(ev) {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      this.drop(4400, 'invalid message');
      this.scheduleReconnect('the server sent an invalid message');
      return;
    }
    this.heartbeat();
    const sub = msg.id != null ? this.subs.get(msg.id) : null;
    switch (msg.type) {
      case 'connection_ack':
        clearTimeout(this.timers.ack);
        this.acked = true;
        this.attempt = 0;
        this.status('connected');
        for (const s of this.subs.values()) this.sendSubscribe(s);
        break;
      case 'ping':
        this.send(msg.payload ? { type: 'pong', payload: msg.payload } : { type: 'pong' });
        break;
      case 'pong':
        break; // heartbeat() already counted it
      case 'next':
        if (sub) {
          sub.retries = 0;
          sub.sink.next(msg.payload);
        }
        break;
      case 'error':
        if (sub) this.onSubscriptionError(sub, msg.payload);
        break;
      case 'complete':
        if (sub && sub.request.endless && sub.retries < 20) {
          // An endless subscription (a live feed) ended by the server, as
          // one going down does before closing: start it again from the
          // last point seen, on this connection or the next.
          this.resubscribeLater(sub, []);
        } else if (sub) {
          this.subs.delete(sub.id);
          if (sub.sink.complete) sub.sink.complete();
        }
        break;
      default:
        break;
    }
  }

  onSubscriptionError(sub, errors) {
    const list = Array.isArray(errors) ? errors : [errors];
    const code = list[0] && list[0].extensions ? list[0].extensions.code : null;
    if (RETRYABLE.has(code) && sub.retries < 8) {
      this.resubscribeLater(sub, list);
      return;
    }
    this.subs.delete(sub.id);
    if (sub.sink.error) sub.sink.error(list);
  }

  // The server ended sub; subscribe again from the last point seen, after a
  // backoff. If the connection drops meanwhile, the reconnect does it.
  resubscribeLater(sub, errors) {
    sub.retries += 1;
    const delay = backoff(sub.retries);
    if (sub.sink.retry) sub.sink.retry(errors, delay);
    clearTimeout(sub.retryTimer);
    sub.retryTimer = setTimeout(() => {
      if (this.subs.get(sub.id) === sub && this.acked) this.sendSubscribe(sub);
    }, delay);
  }

  heartbeat() {
    clearTimeout(this.timers.ping);
    clearTimeout(this.timers.pong);
    this.timers.ping = setTimeout(() => {
      this.send({ type: 'ping' });
      this.timers.pong = setTimeout(() => {
        this.drop(4408, 'no answer to ping');
        this.scheduleReconnect('the connection went silent');
      }, PONG_TIMEOUT);
    }, PING_EVERY);
  }

  onClose(ev) {
    if (ev.target !== this.ws) return; // an old socket
    this.clearTimers();
    this.ws = null;
    this.acked = false;
    for (const sub of this.subs.values()) clearTimeout(sub.retryTimer);
    if (this.subs.size === 0) {
      this.status('idle');
      return;
    }
    if (ev.code === UNAUTHORIZED || ev.code === FORBIDDEN) {
      this.authFailed(ev.code, ev.reason);
      return;
    }
    if (FATAL.has(ev.code)) {
      this.status('failed', { reason: `closed by the server: ${ev.code} ${ev.reason}` });
      for (const sub of this.subs.values()) if (sub.sink.error) sub.sink.error([{ message: `connection closed: ${ev.code} ${ev.reason}` }]);
      this.subs.clear();
      return;
    }
    this.scheduleReconnect(ev.reason || (ev.code === 1006 ? 'connection lost' : `closed (${ev.code})`));
  }

  authFailed(code, reason) {
    const why = code === FORBIDDEN ? 'The token may not subscribe.' : 'The server needs a valid access token.';
    this.status('unauthorized', { reason: why });
    if (!this.onAuthFailure) return;
    this.onAuthFailure(code, reason || why).then(
      () => {
        if (this.subs.size > 0) this.connectNow();
      },
      () => {
        /* stay offline until reconnect() */
      },
    );
  }

  scheduleReconnect(reason) {
    if (this.subs.size === 0) {
      this.status('idle');
      return;
    }
    this.attempt += 1;
    const delay = backoff(this.attempt);
    this.status('waiting', { retryIn: delay, reason });
    clearTimeout(this.timers.retry);
    this.timers.retry = setTimeout(() => this.connect(), delay);
  }

  /** Forgets the current socket at once (its events are ignored) and closes it. */
  drop(code = 1000, reason = '') {
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    this.acked = false;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason.slice(0, 120));
    } catch {
      // already closed
    }
  }

  shutdown(why) {
    clearTimeout(this.timers.retry);
    this.drop(1000, why);
    this.status('idle');
  }

  clearTimers() {
    for (const k of ['ack', 'ping', 'pong', 'lazy']) clearTimeout(this.timers[k]);
  }
}

/** Exponential backoff with full jitter: between half and all of min·2^(n-1), capped. */
export function backoff(n) {
  const base = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** Math.max(0, n - 1));
  return Math.round(base / 2 + (Math.random() * base) / 2);
}
