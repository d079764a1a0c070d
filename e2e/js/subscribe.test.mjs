// Subscriptions through the JavaScript clients frontends use, against a
// running hindsight server (HINDSIGHT_URL, e.g. http://127.0.0.1:8080):
//
//   - graphql-ws (the graphql-transport-ws subprotocol), on its own and
//     behind Apollo Client's GraphQLWsLink and urql's subscriptionExchange,
//     and
//   - subscriptions-transport-ws (the legacy graphql-ws subprotocol), and
//   - graphql-sse, in both its distinct connections mode and its single
//     connection mode (PUT reservation, GET stream, POST operations,
//     DELETE to stop).
//
// Each test subscribes to events(afterPosition: "0") and, at the same time,
// has 8 concurrent writers append 500 events in all with HTTP POSTs of
// appendToStream. It then asserts that the client received all 500, that
// positions arrived strictly increasing with no duplicates and no gaps
// (positions are gap-free, so a replay from "0" must deliver 1, 2, 3, ...),
// and that every event arrived at the position its append returned.
//
// e2e/js_test.go runs this file against the built binary, after
// `npm ci --prefix e2e/js`. By hand: HINDSIGHT_URL=http://127.0.0.1:8080 node subscribe.test.mjs
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';

import { ApolloClient, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { Client as UrqlClient, subscriptionExchange } from '@urql/core';
import { createClient as createSSEClient } from 'graphql-sse';
import { createClient } from 'graphql-ws';
import { SubscriptionClient } from 'subscriptions-transport-ws';
import WebSocket from 'ws';

const base = process.env.HINDSIGHT_URL;
if (!base) {
  console.error('HINDSIGHT_URL must name a running hindsight server, e.g. http://127.0.0.1:8080');
  process.exit(2);
}
const httpURL = new URL('/graphql', base).href;
const wsURL = httpURL.replace(/^http/, 'ws');

const WRITERS = 8;
const EVENTS = 500;
const TIMEOUT_MS = 120_000;

const SUBSCRIPTION = 'subscription { events(afterPosition: "0") { id position streamId version type } }';
const APPEND = `mutation($s: String!, $e: [NewEvent!]!) {
  appendToStream(streamId: $s, events: $e) { firstPosition lastPosition }
}`;

async function post(query, variables) {
  const res = await fetch(httpURL, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST /graphql: ${res.status} ${text}`);
  const body = JSON.parse(text);
  if (body.errors?.length) throw new Error(`POST /graphql: ${JSON.stringify(body.errors)}`);
  return body.data;
}

// appendAll has WRITERS concurrent writers, each on its own stream
// `${prefix}-${w}`, append EVENTS events in all, one per request. It returns
// the appended events by id, with the position each append returned.
async function appendAll(prefix) {
  const appended = new Map();
  let next = 0;
  async function writer(w) {
    const streamId = `${prefix}-${w}`;
    for (let n = next++; n < EVENTS; n = next++) {
      const id = randomUUID();
      const data = await post(APPEND, { s: streamId, e: [{ id, type: 'JsWritten', data: { writer: w, n } }] });
      const r = data.appendToStream;
      assert.equal(r.firstPosition, r.lastPosition);
      appended.set(id, { position: r.firstPosition, streamId });
    }
  }
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  assert.equal(appended.size, EVENTS);
  return appended;
}

// collector gathers what a subscription delivers. done resolves once EVENTS
// events of streams under prefix have arrived, and rejects on an error, an
// early completion or the timeout.
function collector(prefix) {
  const received = [];
  let own = 0;
  let resolve, reject;
  const done = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const timer = setTimeout(
    () => reject(new Error(`timed out after ${TIMEOUT_MS} ms with ${own} of ${EVENTS} events received`)),
    TIMEOUT_MS,
  );
  done.finally(() => clearTimeout(timer)).catch(() => {});
  return {
    received,
    done,
    next(result) {
      if (result.errors?.length) {
        reject(new Error(`subscription errors: ${JSON.stringify(result.errors)}`));
        return;
      }
      const e = result.data.events;
      received.push(e);
      if (e.streamId.startsWith(`${prefix}-`) && ++own === EVENTS) resolve();
    },
    error(err) {
      reject(new Error(`subscription failed: ${describe(err)}`));
    },
    complete() {
      reject(new Error(`subscription completed after ${received.length} events, before all ${EVENTS} arrived`));
    },
  };
}

function describe(err) {
  if (Array.isArray(err)) return JSON.stringify(err); // GraphQL errors
  if (err && typeof err.code === 'number') return `websocket closed: ${err.code} ${err.reason}`; // CloseEvent
  return String(err?.message ?? err);
}

// check asserts the guarantees on what a subscription from "0" received.
function check(received, appended, prefix) {
  // All positions, in order, gap-free from 1: strictly increasing, no
  // duplicates, nothing skipped (including other tests' events).
  received.forEach((e, i) => {
    assert.equal(e.position, String(i + 1), `event #${i + 1} of the subscription has position ${e.position}`);
  });
  const own = received.filter((e) => e.streamId.startsWith(`${prefix}-`));
  assert.equal(own.length, EVENTS, 'events received from this test\'s writers');
  const seen = new Set();
  const versions = new Map();
  for (const e of own) {
    assert.ok(!seen.has(e.id), `event ${e.id} delivered twice`);
    seen.add(e.id);
    const a = appended.get(e.id);
    assert.ok(a, `event ${e.id} was not appended by this test`);
    assert.equal(e.position, a.position, `event ${e.id}: delivered position vs the append's`);
    assert.equal(e.streamId, a.streamId);
    assert.equal(e.type, 'JsWritten');
    // Within a stream, versions arrive 1, 2, 3, ...
    const v = (versions.get(e.streamId) ?? 0) + 1;
    assert.equal(e.version, v, `stream ${e.streamId}: version order`);
    versions.set(e.streamId, v);
  }
  assert.equal(seen.size, appended.size);
}

// run subscribes with subscribe(sink) (which returns a function that ends
// the subscription), appends meanwhile, and checks what arrived.
async function run(prefix, subscribe) {
  const c = collector(prefix);
  const unsubscribe = await subscribe(c);
  try {
    // The writers start while the subscription is still catching up, so
    // events arrive both from the replay and live, across the handover.
    const [appended] = await Promise.all([appendAll(prefix), c.done]);
    check(c.received, appended, prefix);
  } finally {
    await unsubscribe();
  }
}

test('graphql-ws (graphql-transport-ws): 8 writers, 500 events, all delivered in order', { timeout: TIMEOUT_MS + 30_000 }, async () => {
  const prefix = `js-transport-${randomUUID()}`;
  let protocol;
  const client = createClient({
    url: wsURL,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    on: { opened: (socket) => (protocol = socket.protocol) },
  });
  await run(prefix, async (sink) => {
    const end = client.subscribe({ query: SUBSCRIPTION }, sink);
    return async () => {
      end();
      await client.dispose();
    };
  });
  assert.equal(protocol, 'graphql-transport-ws');
});

test('Apollo Client (GraphQLWsLink): 8 writers, 500 events, all delivered in order', { timeout: TIMEOUT_MS + 30_000 }, async () => {
  const prefix = `js-apollo-${randomUUID()}`;
  const ws = createClient({ url: wsURL, webSocketImpl: WebSocket, retryAttempts: 0 });
  const apollo = new ApolloClient({ link: new GraphQLWsLink(ws), cache: new InMemoryCache() });
  await run(prefix, async (sink) => {
    const sub = apollo.subscribe({ query: gql(SUBSCRIPTION), fetchPolicy: 'no-cache' }).subscribe({
      // Apollo Client 4 reports GraphQL errors in result.error.
      next: (r) => (r.error ? sink.error(r.error) : sink.next({ data: r.data })),
      error: (err) => sink.error(err),
      complete: () => sink.complete(),
    });
    return async () => {
      sub.unsubscribe();
      await ws.dispose();
    };
  });
});

test('urql (subscriptionExchange over graphql-ws): 8 writers, 500 events, all delivered in order', { timeout: TIMEOUT_MS + 30_000 }, async () => {
  const prefix = `js-urql-${randomUUID()}`;
  const ws = createClient({ url: wsURL, webSocketImpl: WebSocket, retryAttempts: 0 });
  const urql = new UrqlClient({
    url: httpURL,
    exchanges: [
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || '' };
          return { subscribe: (observer) => ({ unsubscribe: ws.subscribe(input, observer) }) };
        },
      }),
    ],
  });
  await run(prefix, async (sink) => {
    const sub = urql.subscription(SUBSCRIPTION, {}).subscribe((r) => (r.error ? sink.error(r.error) : sink.next({ data: r.data })));
    return async () => {
      sub.unsubscribe();
      await ws.dispose();
    };
  });
});

test('subscriptions-transport-ws (legacy graphql-ws): 8 writers, 500 events, all delivered in order', { timeout: TIMEOUT_MS + 30_000 }, async () => {
  const prefix = `js-legacy-${randomUUID()}`;
  const client = new SubscriptionClient(wsURL, { reconnect: false, lazy: true }, WebSocket);
  let protocol;
  client.onConnected(() => (protocol = client.client?.protocol));
  await run(prefix, async (sink) => {
    const sub = client.request({ query: SUBSCRIPTION }).subscribe(sink);
    return async () => {
      sub.unsubscribe();
      client.close();
    };
  });
  assert.equal(protocol, 'graphql-ws');
});

for (const singleConnection of [false, true]) {
  const mode = singleConnection ? 'single connection' : 'distinct connections';
  test(`graphql-sse (${mode} mode): 8 writers, 500 events, all delivered in order`, { timeout: TIMEOUT_MS + 30_000 }, async () => {
    const prefix = `js-sse-${singleConnection ? 'single' : 'distinct'}-${randomUUID()}`;
    // retryAttempts 0: a refused request fails the test instead of being
    // retried quietly.
    const client = createSSEClient({ url: httpURL, singleConnection, retryAttempts: 0 });
    await run(prefix, async (sink) => {
      const end = client.subscribe({ query: SUBSCRIPTION }, sink);
      return async () => {
        end();
        client.dispose();
      };
    });
  });
}

test('graphql-sse (single connection mode): a query, and two subscriptions on one stream, one stopped early', { timeout: 60_000 }, async () => {
  const client = createSSEClient({ url: httpURL, singleConnection: true, retryAttempts: 0 });
  try {
    const head = await new Promise((resolve, reject) => {
      let data;
      client.subscribe({ query: '{ headPosition }' }, {
        next: (r) => (data = r.data),
        error: reject,
        complete: () => resolve(data.headPosition),
      });
    });
    assert.match(head, /^[0-9]+$/);
    // Two live subscriptions from the head; the first is stopped (DELETE)
    // after one event, the second gets both events.
    const got = [[], []];
    const ends = [];
    const firstTwo = new Promise((resolve, reject) => {
      for (const i of [0, 1]) {
        ends[i] = client.subscribe({ query: `subscription { events(afterPosition: "${head}") { position } }` }, {
          next: (r) => {
            if (r.errors) return reject(new Error(JSON.stringify(r.errors)));
            got[i].push(r.data.events.position);
            if (i === 0 && got[0].length === 1) ends[0]();
            if (got[1].length === 2) resolve();
          },
          error: reject,
          complete: () => {},
        });
      }
    });
    await post(APPEND, { s: `js-sse-single-${randomUUID()}`, e: [{ type: 'A', data: {} }] });
    await new Promise((r) => setTimeout(r, 300));
    await post(APPEND, { s: `js-sse-single-${randomUUID()}`, e: [{ type: 'B', data: {} }] });
    await firstTwo;
    assert.equal(got[0].length, 1, 'the stopped subscription got nothing after its DELETE');
    assert.deepEqual(got[1], [String(Number(head) + 1), String(Number(head) + 2)]);
    ends[1]();
  } finally {
    client.dispose();
  }
});
