// GraphQL over HTTP (fetch), with the access token of auth.js.

import { token, requireToken } from './auth.js';

export const GRAPHQL_PATH = '/graphql';

/** An error of a GraphQL operation, with the first error's extensions.code. */
export class GqlError extends Error {
  constructor(message, { code = null, errors = [], status = 0 } = {}) {
    super(message);
    this.name = 'GqlError';
    this.code = code;
    this.errors = errors;
    this.status = status;
  }
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/**
 * Runs a query or mutation and returns its data. Throws a GqlError when the
 * answer has errors. When the server answers UNAUTHENTICATED, asks for a
 * token (once for all concurrent requests) and retries.
 */
export async function gql(query, variables = {}, { signal } = {}) {
  for (let attempt = 0; ; attempt++) {
    let resp;
    try {
      resp = await fetch(GRAPHQL_PATH, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...authHeaders() },
        body: JSON.stringify({ query, variables }),
        signal,
      });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new GqlError(`the server cannot be reached (${e.message})`, { code: 'NETWORK' });
    }
    let body = null;
    try {
      body = await resp.json();
    } catch {
      // not JSON: a proxy or the network
    }
    const errors = (body && body.errors) || [];
    const code = errors[0] && errors[0].extensions ? errors[0].extensions.code : null;
    if ((resp.status === 401 || code === 'UNAUTHENTICATED') && attempt < 3) {
      await requireToken(`The server needs an access token${errors[0] ? ` (it answered: ${errors[0].message})` : ''}.`);
      continue;
    }
    if (errors.length) {
      throw new GqlError(errors.map((e) => e.message).join('; '), { code, errors, status: resp.status });
    }
    if (!resp.ok || !body) {
      throw new GqlError(`HTTP ${resp.status} ${resp.statusText}`, { status: resp.status });
    }
    return body.data;
  }
}

/** The websocket URL of the GraphQL endpoint on this page's origin. */
export function wsURL() {
  const u = new URL(GRAPHQL_PATH, window.location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

/** Fields of an event, as the views show them. */
export const EVENT_FIELDS = 'id streamId version position type data metadata recordedAt hash';

export const ORDER_FIELDS = `id version position status customerId totalCents createdAt updatedAt
  placedAt paidAt shippedAt cancelledAt cancelReason trackingNumber items { sku quantity unitPriceCents }`;

/** The prefix of the streams that hold orders (projections.OrderStreamID). */
export const ORDER_STREAM_PREFIX = 'order-';
