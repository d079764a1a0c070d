// GraphiQL at / in Debian's Chromium, driven by playwright-core, with every
// host but the server blocked: the page must load everything it needs from
// the server itself. It runs a query (after a mutation) and a subscription
// that receives an event appended meanwhile, checks that the link to the
// explorer covers none of GraphiQL, and fails on any console error
// (a Content-Security-Policy violation is one). Run by e2e/browser_test.go:
//
//   HINDSIGHT_URL        a server with auth none (required)
//   HINDSIGHT_ARTIFACTS  where the screenshot goes (default e2e/artifacts)
//   CHROMIUM             the browser (default /usr/bin/chromium)

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.HINDSIGHT_URL || '').replace(/\/$/, '');
const ARTIFACTS = process.env.HINDSIGHT_ARTIFACTS || path.join(here, '..', 'artifacts');
const WAIT = 15_000;
const log = (...a) => console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...a);

if (!BASE) {
  console.error('HINDSIGHT_URL must name a running hindsight server, e.g. http://127.0.0.1:8080');
  process.exit(2);
}

async function append(stream, type) {
  const resp = await fetch(`${BASE}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      query: 'mutation($s: String!, $t: String!) { appendToStream(streamId: $s, events: [{type: $t, data: {n: 1}}]) { lastPosition } }',
      variables: { s: stream, t: type },
    }),
  });
  const body = await resp.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data.appendToStream.lastPosition;
}

/** Puts text into GraphiQL's query editor (CodeMirror 5) and runs it. */
async function run(page, text) {
  await page.evaluate((t) => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(t), text);
  // GraphiQL parses the editor's text after a pause in typing, and picks
  // the websocket for a subscription from that parse: give it the pause a
  // typist would.
  await page.waitForTimeout(1000);
  await page.click('.graphiql-execute-button');
}

/** Waits until the response pane shows text containing want. */
async function response(page, want) {
  await page.waitForFunction((w) => {
    const cm = document.querySelector('.graphiql-response .CodeMirror');
    return cm && cm.CodeMirror.getValue().includes(w);
  }, want, { timeout: WAIT });
  return page.evaluate(() => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue());
}

async function main() {
  const origin = new URL(BASE).origin;
  const errors = [];
  const blocked = [];
  let browser;
  let page;
  try {
    browser = await launch({ width: 1280, height: 800, timeout: WAIT });
    const { context } = browser;
    // Offline but for the server: every other host is refused.
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('data:') || new URL(url).origin === origin) return route.continue();
      blocked.push(url);
      return route.abort('blockedbyclient');
    });
    page = context.pages()[0] || (await context.newPage());
    page.on('console', (msg) => { if (msg.type() === 'error') errors.push(`console: ${msg.text()}`); });
    page.on('pageerror', (err) => errors.push(`uncaught: ${err.stack || err}`));
    const ws = [];
    page.on('websocket', (s) => ws.push(s.url()));

    await page.goto(`${BASE}/`);
    await page.waitForSelector('.graphiql-query-editor .CodeMirror');
    log('GraphiQL loaded');

    // The document GraphiQL opens with is valid: its Append and Read run.
    const initial = await page.evaluate(() => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue());
    assert.match(initial, /subscription Live/, 'the opening document has a subscription to try');
    for (const operationName of ['Append', 'Read']) {
      const resp = await fetch(`${BASE}/graphql`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ query: initial, operationName }),
      });
      const body = await resp.json();
      assert.equal(body.errors, undefined, `${operationName} of the opening document: ${JSON.stringify(body.errors)}`);
    }

    // A mutation, then a query that reads what it wrote.
    await run(page, 'mutation { appendToStream(streamId: "graphiql-1", events: [{type: "Hello", data: {from: "graphiql"}}]) { nextExpectedVersion } }');
    await response(page, '"nextExpectedVersion": 1');
    await run(page, '{ stream(id: "graphiql-1") { version state } }');
    const read = await response(page, '"version": 1');
    assert.match(read, /"from": "graphiql"/);
    log('query answered');

    // A subscription replays the stream, then receives an event appended
    // from outside while it is open.
    await run(page, 'subscription { streamEvents(streamId: "graphiql-1", afterVersion: 0) { version type } }');
    await response(page, '"type": "Hello"');
    await append('graphiql-1', 'Live');
    await response(page, '"type": "Live"');
    assert.ok(ws.some((u) => u.startsWith(origin.replace(/^http/, 'ws') + '/graphql')), `no websocket to /graphql: ${ws}`);
    log('subscription received the live event');

    // The explorer link sits in its own bar, over none of GraphiQL.
    const link = await page.locator('#hindsight-explorer-link').boundingBox();
    const gql = await page.locator('.graphiql-container').boundingBox();
    assert.ok(link && gql && link.y + link.height <= gql.y, `the explorer link ${JSON.stringify(link)} overlaps GraphiQL ${JSON.stringify(gql)}`);
    assert.equal(await page.getAttribute('#hindsight-explorer-link', 'href'), '/explorer/');

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'graphiql.png') });
  } catch (err) {
    if (page && !page.isClosed()) {
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'graphiql-failure.png') }).catch(() => {});
    }
    if (errors.length) console.error('page errors:', errors);
    if (blocked.length) console.error('blocked requests:', blocked);
    throw err;
  } finally {
    if (browser) await browser.close();
  }
  assert.deepEqual(blocked, [], 'the page asked for other hosts');
  assert.deepEqual(errors, [], 'the page logged errors');
  log('ok');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
