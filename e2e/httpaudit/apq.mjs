// Automatic persisted queries with Apollo Client's own PersistedQueryLink
// against the binary at HINDSIGHT_URL: the first request of a query sends
// only its hash and gets PersistedQueryNotFound, the link then sends the full
// query, and a later client's request of the same query is a hash-only hit.
// The requests are recorded as the link sent them, so what is asserted is
// the protocol on the wire, not our reading of it.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';

const url = process.env.HINDSIGHT_URL;
const sent = [];
const answers = [];
async function recordingFetch(uri, init) {
  sent.push(JSON.parse(init.body));
  const res = await fetch(uri, init);
  answers.push(await res.clone().json());
  return res;
}
const sha256 = (q) => createHash('sha256').update(q).digest('hex');
function newClient() {
  return new ApolloClient({
    cache: new InMemoryCache(),
    link: new PersistedQueryLink({ sha256 }).concat(new HttpLink({ uri: url, fetch: recordingFetch })),
  });
}

const query = gql`query PersistedHead { headPosition }`;

const first = await newClient().query({ query, fetchPolicy: 'network-only' });
assert.equal(typeof first.data.headPosition, 'string');
assert.equal(sent.length, 2, 'a miss, then the full query');
assert.equal(sent[0].query, undefined, 'the first request carries only the hash');
const hash = sent[0].extensions.persistedQuery.sha256Hash;
assert.match(hash, /^[0-9a-f]{64}$/);
assert.equal(answers[0].errors[0].message, 'PersistedQueryNotFound');
assert.match(sent[1].query, /headPosition/);
assert.equal(sent[1].extensions.persistedQuery.sha256Hash, hash);

const second = await newClient().query({ query, fetchPolicy: 'network-only' });
assert.equal(sent.length, 3, 'one hash-only request');
assert.equal(sent[2].query, undefined);
assert.equal(sent[2].extensions.persistedQuery.sha256Hash, hash);
assert.equal(answers[2].errors, undefined);
assert.equal(second.data.headPosition, first.data.headPosition);
console.log(`apq: miss, full query, then a hash-only hit (${hash.slice(0, 12)}…) with Apollo Client's PersistedQueryLink`);
