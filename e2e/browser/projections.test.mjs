// The explorer's Projections view (issue 19) in Debian's Chromium, driven by
// playwright-core. Run by e2e/browser_projections_test.go, which starts a
// server with auth none at HINDSIGHT_URL. It defines a projection, fills two
// carts, then checks the list of definitions, the table of partitions now
// and at a time before the second cart, the jq filter, and one partition's
// version slider. It fails on any console error or uncaught exception.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, waitText } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.HINDSIGHT_URL || '').replace(/\/$/, '');
const ARTIFACTS = process.env.HINDSIGHT_ARTIFACTS || path.join(here, '..', 'artifacts');
const WAIT = 15_000;
const log = (...a) => console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...a);

async function gql(query, variables = {}) {
  const resp = await fetch(`${BASE}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = await resp.json();
  if (body.errors) throw new Error(`${query.slice(0, 60)}…: ${JSON.stringify(body.errors)}`);
  return body.data;
}

const add = (cart, qty, price) => gql(`mutation($s: String!, $d: JSON!) { appendToStream(streamId: $s, events: [{type: "ItemAdded", data: $d}]) { lastPosition } }`,
  { s: cart, d: { quantity: qty, priceCents: price } });

async function scenario(page) {
  await gql(`mutation($d: ProjectionDefinitionInput!) { defineProjection(definition: $d) { definition { version } } }`, {
    d: { name: 'totals', streamPrefix: 'cart-', initialState: { total: 0 }, reducer: '.state.total += .event.data.quantity * .event.data.priceCents | .state' },
  });
  await add('cart-a', 2, 100);
  await add('cart-a', 1, 50);
  // The time picker has whole seconds: take the next whole second as the
  // time between the carts, and add cart-b after it.
  const before = new Date(Math.ceil((Date.now() + 1) / 1000) * 1000);
  await new Promise((r) => setTimeout(r, before.getTime() - Date.now() + 100));
  await add('cart-b', 1, 999);

  await page.goto(`${BASE}/explorer/#/projections`);
  await waitText(page, '#view-title', 'Projections');
  await waitText(page, 'main section', 'totals', 'the definition listed');
  await waitText(page, 'main section table', /active/, 'its version is active');
  log('list: totals, active');

  await page.locator('main section h3 a', { hasText: 'totals' }).click();
  await waitText(page, '#view-title', 'Projection totals');
  await waitText(page, '#proj-table [role=status]', '2 partitions', 'the partitions now');
  await waitText(page, '#proj-table tbody', 'cart-b');
  log('table now: cart-a, cart-b');

  // At a time before cart-b: only cart-a. The picker takes local time (UTC here).
  const local = before.toISOString().slice(0, 19);
  await page.locator('#proj-at').fill(local);
  await page.locator('#proj-filter').fill('.total > 100');
  await page.locator('form.filters button[type=submit]').click();
  await waitText(page, '#proj-table [role=status]', '1 partition at', 'the partitions at the earlier time, filtered');
  const rows = await page.locator('#proj-table tbody tr').allTextContents();
  assert.equal(rows.length, 1, 'one row');
  assert.match(rows[0], /cart-a/);
  assert.match(rows[0], /"total": ?250/);
  log('table at an earlier time with a filter: cart-a only');

  // One partition: the slider over its versions.
  await page.locator('#proj-table tbody a', { hasText: 'cart-a' }).click();
  await waitText(page, '#proj-slider-out', '2 of 2', 'the partition at its latest version');
  await waitText(page, '#proj-state', 'Version 2');
  const slider = page.locator('#proj-slider');
  await slider.focus();
  await page.keyboard.press('Home');
  await waitText(page, '#proj-slider-out', '1 of 2');
  await waitText(page, '#proj-state', 'Version 1', 'the state at version 1');
  await waitText(page, '#proj-state', '200', 'the total at version 1');
  log('slider: version 1 of 2, total 200');
  // Live: a new event of the partition extends the slider.
  await add('cart-a', 1, 1);
  await waitText(page, '#proj-slider-out', '1 of 3', 'the slider range after a live event');
  // The time form: the version at the earlier time is 2.
  await page.locator('#proj-key-at').fill(local);
  await page.locator('#proj-partition form button[type=submit]').click();
  await waitText(page, '#proj-slider-out', '2 of 3', 'the version at the earlier time');
  await waitText(page, '#proj-state', '250');
  log('live: 3 versions; at the earlier time: version 2');
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'explorer-projections.png'), fullPage: true });
}

async function main() {
  if (!BASE) throw new Error('HINDSIGHT_URL must name a running hindsight server');
  const errors = [];
  let browser;
  let page;
  try {
    browser = await launch({ width: 1280, height: 900, timeout: WAIT });
    page = await browser.context.newPage();
    page.on('console', (msg) => { if (msg.type() === 'error') errors.push(`console: ${msg.text()}`); });
    page.on('pageerror', (err) => errors.push(`uncaught: ${err.stack || err}`));
    await scenario(page);
  } catch (err) {
    if (page && !page.isClosed()) {
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'explorer-projections-failure.png'), fullPage: true }).catch(() => {});
    }
    if (errors.length) console.error('page errors:', errors);
    throw err;
  } finally {
    if (browser) await browser.close();
  }
  assert.deepEqual(errors, [], 'the page logged errors');
  log('ok');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
