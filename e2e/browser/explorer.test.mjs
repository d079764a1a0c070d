// The time-travel explorer (/explorer/) in Debian's Chromium, driven by
// playwright-core. Run by e2e/browser_test.go, which starts the servers:
//
//   HINDSIGHT_URL        a server with auth none (required)
//   HINDSIGHT_AUTH_URL   optional: a server with auth apikey, and
//   HINDSIGHT_AUTH_KEY   a writer key of it: the page must ask for a token
//   HINDSIGHT_ARTIFACTS  where screenshots go (default e2e/artifacts)
//   CHROMIUM             the browser (default /usr/bin/chromium)
//
// It fails on any console error or uncaught exception of the page.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, waitText } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.HINDSIGHT_URL || '').replace(/\/$/, '');
const AUTH_BASE = (process.env.HINDSIGHT_AUTH_URL || '').replace(/\/$/, '');
const AUTH_KEY = process.env.HINDSIGHT_AUTH_KEY || '';
const ARTIFACTS = process.env.HINDSIGHT_ARTIFACTS || path.join(here, '..', 'artifacts');
const WAIT = 15_000;

if (!BASE) {
  console.error('HINDSIGHT_URL must name a running hindsight server, e.g. http://127.0.0.1:8080');
  process.exit(2);
}

let expectWsErrors = false; // while the test keeps the browser offline
let refusedReconnects = 0;
let currentPage = null; // for a screenshot when a step fails
const log = (...a) => console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...a);

async function gql(base, query, variables = {}, token = '') {
  const resp = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await resp.json();
  if (body.errors) throw new Error(`${query.slice(0, 60)}…: ${JSON.stringify(body.errors)}`);
  return body.data;
}

const ORDER = 'id version status totalCents';

/** Creates an order and steps it through create (2 items), add item, place and pay: versions 1-4. */
async function makeOrder(base, id) {
  const steps = [
    ['createOrder', `mutation($id: ID!) { createOrder(orderId: $id, customerId: "cust-7", items: [
        {sku: "apple", quantity: 2, unitPriceCents: 150}, {sku: "pear", quantity: 1, unitPriceCents: 300}]) { ${ORDER} } }`],
    ['addOrderItem', `mutation($id: ID!) { addOrderItem(orderId: $id, item: {sku: "plum", quantity: 3, unitPriceCents: 125}) { ${ORDER} } }`],
    ['placeOrder', `mutation($id: ID!) { placeOrder(orderId: $id) { ${ORDER} } }`],
    ['payOrder', `mutation($id: ID!) { payOrder(orderId: $id, amountCents: 975) { ${ORDER} } }`],
  ];
  const seen = [];
  for (const [name, q] of steps) {
    const o = (await gql(base, q, { id }))[name];
    seen.push(`${o.version}:${o.status}:${o.totalCents}`);
  }
  assert.deepEqual(seen, ['1:DRAFT:600', '2:DRAFT:975', '3:PLACED:975', '4:PAID:975'], 'the order lifecycle through the API');
}

/** Text of a locator, trimmed. */
async function text(page, sel) {
  return (await page.locator(sel).first().textContent({ timeout: WAIT })).trim();
}

// --- accessibility checks run inside the page

/** Text with too little contrast (WCAG AA: 4.5:1, 3:1 for large text), and unlabelled controls. */
function a11yProblems() {
  const parse = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c || '');
    if (!m) return null;
    const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const lum = ({ r, g, b }) => {
    const f = (v) => {
      const x = v / 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const ratio = (a, b) => {
    const [l1, l2] = [lum(a), lum(b)].sort((x, y) => y - x);
    return (l1 + 0.05) / (l2 + 0.05);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) {
        layers.push(c);
        if (c.a >= 1) break;
      }
    }
    let color = { r: 255, g: 255, b: 255, a: 1 };
    for (let i = layers.length - 1; i >= 0; i--) color = over(layers[i], color);
    return color;
  };
  const visible = (el) => {
    if (el.closest('.sr-only, [hidden], dialog:not([open]), noscript, option, datalist')) return false;
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden' || st.display === 'none' || Number(st.opacity) === 0) return false;
    return el.getClientRects().length > 0;
  };
  const problems = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const checked = new Set();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || checked.has(el) || !visible(el)) continue;
    checked.add(el);
    if (el.closest('button:disabled, input:disabled')) continue; // inactive controls are exempt
    const st = getComputedStyle(el);
    const inSvg = el instanceof SVGElement;
    const fg = parse(inSvg ? st.fill : st.color);
    if (!fg) continue;
    const bg = background(inSvg ? el.ownerSVGElement : el);
    const r = ratio(over(fg, bg), bg);
    const size = parseFloat(st.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
    if (r < (large ? 3 : 4.5)) {
      problems.push(`contrast ${r.toFixed(2)}:1 for “${n.textContent.trim().slice(0, 40)}” (${st.color} on rgb(${bg.r},${bg.g},${bg.b}))`);
    }
  }
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href]')) {
    if (!visible(el) && el.type !== 'range') continue;
    const name = (el.labels && el.labels.length ? [...el.labels].map((l) => l.textContent).join(' ') : '')
      || el.getAttribute('aria-label') || (el.getAttribute('aria-labelledby') ? 'labelledby' : '')
      || ((el.tagName === 'BUTTON' || el.tagName === 'A') ? el.textContent : '') || el.title;
    if (!name || !name.trim()) problems.push(`no accessible name: ${el.outerHTML.slice(0, 80)}`);
  }
  return problems;
}

async function checkA11y(page, view) {
  const problems = await page.evaluate(a11yProblems);
  assert.deepEqual(problems, [], `accessibility problems on the ${view} view`);
  log(`a11y: ${view} ok`);
}

// --- the scenarios

async function explorerScenario(context, errors) {
  const page = await context.newPage();
  currentPage = page;
  watch(page, errors);
  const orderId = `e2e-${Date.now().toString(36)}`;
  const streamId = `order-${orderId}`;
  await makeOrder(BASE, orderId);
  log(`order ${orderId} at version 4 (PAID)`);

  // Open the explorer on the order: it follows live and shows the latest version.
  await page.goto(`${BASE}/explorer/#/order/${encodeURIComponent(orderId)}`);
  await page.evaluate(() => { window.__sameDocument = true; });
  await waitText(page, '#view-title', `Order ${orderId}`);
  await waitText(page, '#slider-out', '4 of 4', 'the version shown on opening');
  await waitText(page, '#order-status', 'PAID');
  assert.equal(await page.locator('#follow').isChecked(), true, 'opening without ?v= follows live');
  await waitText(page, '#stream-events tbody tr:first-child', 'OrderPaid', 'the newest event of the events list');
  await page.locator('.tick .tick-t').first().waitFor({ timeout: WAIT });

  // Keyboard: the skip link comes first, then the header, and the slider is reachable.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.className), 'skip', 'Tab first reaches the skip link');

  // No empty band under the timeline's controls while there is nothing to say.
  const band = await page.evaluate(() => {
    const empty = ['#jump-result', '#live-note'].every((id) => document.querySelector(id).textContent === '');
    const t = document.querySelector('#timeline').getBoundingClientRect();
    const c = document.querySelector('#timeline .controls').getBoundingClientRect();
    return { empty, gap: t.bottom - c.bottom };
  });
  assert.ok(band.empty, 'nothing to say under the timeline on opening');
  assert.ok(band.gap < 16, `an empty band of ${band.gap}px under the timeline controls`);
  // "Jump to time" in 24-hour ISO, as everywhere on the page.
  assert.match(await page.inputValue('#jump-time'), /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)?$/, 'the jump time is 24-hour ISO');
  assert.equal(await page.getAttribute('#jump-time', 'type'), 'text', 'not a locale-formatted datetime-local');

  // Jump to a time before the order existed.
  await page.fill('#jump-time', '2001-01-01 00:00:00');
  await page.click('.jump button[type=submit]');
  await waitText(page, '#jump-result', 'did not exist yet', 'jump to a time before the order');

  // Drag the slider to version 3 with the keyboard: Home is version 1, then two steps right.
  const slider = page.locator('#slider');
  await slider.focus();
  await page.keyboard.press('Home');
  await waitText(page, '#slider-out', '1 of 4');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await waitText(page, '#slider-out', '3 of 4', 'the slider after Home, →, →');
  assert.equal(await slider.inputValue(), '3');
  await waitText(page, '#state-h', 'State at version 3');
  await waitText(page, '#order-status', 'PLACED', 'the status at version 3');
  const total = page.locator('#order-total');
  assert.equal(await total.getAttribute('data-cents'), '975', 'the total at version 3, in cents');
  assert.equal((await total.textContent()).trim(), '9.75', 'the total shown at version 3');
  await waitText(page, '#event-type', 'OrderPlaced', 'the event that produced version 3');
  await waitText(page, '#diff', 'status', 'the diff against version 2');
  const diff = await text(page, '#diff');
  assert.match(diff, /DRAFT/, 'the diff shows the status before');
  assert.match(diff, /PLACED/, 'the diff shows the status after');
  assert.equal(await page.locator('#follow').isChecked(), false, 'moving back in time stops following');
  assert.match(page.url(), /[?&]v=3\b/, 'the URL names the version');
  log('slider at version 3: PLACED, 9.75');
  await checkA11y(page, 'order');

  // A new event arrives live, without a reload.
  await gql(BASE, 'mutation($id: ID!) { shipOrder(orderId: $id, trackingNumber: "TRK-4711") { version } }', { id: orderId });
  await waitText(page, '#stream-events tbody tr:first-child', 'OrderShipped', 'the shipped event in the events list, live');
  await waitText(page, '#slider-out', '3 of 5', 'the slider range after the live event');
  assert.equal(await slider.getAttribute('max'), '5');
  await waitText(page, '#live-note', '1 newer event');
  assert.equal(await text(page, '#order-status'), 'PLACED', 'not following: the view stays at version 3');
  await waitText(page, '#stream-meta', '5 versions');
  await mkdir(ARTIFACTS, { recursive: true });
  const shot = path.join(ARTIFACTS, 'explorer-order.png');
  await page.screenshot({ path: shot, fullPage: true });
  log(`screenshot ${shot}`);

  // Follow live: the latest version, shipped.
  await page.locator('#follow').check();
  await waitText(page, '#slider-out', '5 of 5');
  await waitText(page, '#order-status', 'SHIPPED');
  await waitText(page, '#order-tracking', 'TRK-4711');
  log('follow live: version 5, SHIPPED');

  // Verify the hash chain.
  await page.click('#verify');
  await waitText(page, '#verify-result', 'Hash chain intact: 5 events checked');

  // A generic stream: JSON state, live while following.
  const cart = `cart-e2e-${Date.now().toString(36)}`;
  await gql(BASE, `mutation($s: String!) { appendToStream(streamId: $s, expectedState: NO_STREAM, events: [
      {type: "ItemAdded", data: {items: {apple: 2}}}, {type: "ItemAdded", data: {items: {pear: 1}}}]) { nextExpectedVersion } }`, { s: cart });
  await page.goto(`${BASE}/explorer/#/stream/${encodeURIComponent(cart)}`);
  await waitText(page, '#slider-out', '2 of 2');
  await waitText(page, '#state', 'pear');
  await gql(BASE, `mutation($s: String!) { appendToStream(streamId: $s, expectedVersion: 2, events: [
      {type: "ItemRemoved", data: {items: {apple: null}}}]) { nextExpectedVersion } }`, { s: cart });
  await waitText(page, '#slider-out', '3 of 3', 'a generic stream follows live');
  await waitText(page, '#event-type', 'ItemRemoved');
  await waitText(page, '#diff', 'removed');
  const state = await text(page, '#state');
  assert.ok(!state.includes('apple'), `the state at version 3 has no apple: ${state}`);
  await checkA11y(page, 'stream');

  // The global log, newest first, live.
  await page.goto(`${BASE}/explorer/#/log`);
  const head = (await gql(BASE, '{ headPosition }')).headPosition;
  await waitText(page, '#log-table tbody tr:first-child td:first-child', head, 'the first row is the head of the log');
  const positions = await page.$$eval('#log-table tbody tr', (trs) => trs.map((tr) => Number(tr.dataset.pos)));
  assert.ok(positions.every((p, i) => i === 0 || p < positions[i - 1]), `newest first: ${positions.slice(0, 10)}`);
  await gql(BASE, `mutation($s: String!) { appendToStream(streamId: $s, events: [{type: "Pinged", data: {n: 1}}]) { firstPosition } }`, { s: `${cart}-ping` });
  await waitText(page, '#log-table tbody tr:first-child', 'Pinged', 'a new event appears at the top of the log, live');
  // JSON in the Data column wraps between members (or at a hyphen), never
  // inside a word, even in a narrow window.
  await gql(BASE, `mutation($s: String!) { appendToStream(streamId: $s, events: [{type: "Noted", data: {quantity: 3,
      sku: "apple-granny-smith", note: "a fairly long note that needs wrapping", items: {pear: 1, plum: 12}}}]) { firstPosition } }`, { s: `${cart}-wrap` });
  await waitText(page, '#log-table tbody tr:first-child', 'Noted');
  await page.setViewportSize({ width: 720, height: 900 });
  const wrapped = await page.$eval('#log-table tbody tr:first-child code.preview', (el) => {
    const text = el.firstChild;
    const lines = (a, b) => { const r = document.createRange(); r.setStart(text, a); r.setEnd(text, b); return new Set([...r.getClientRects()].map((q) => Math.round(q.top))).size; };
    const broken = [];
    for (const m of text.data.matchAll(/[^\s-]+/g)) if (lines(m.index, m.index + m[0].length) > 1) broken.push(m[0]);
    return { broken, lines: lines(0, text.data.length) };
  });
  await page.setViewportSize({ width: 1280, height: 900 });
  assert.ok(wrapped.lines > 1, `the Data cell should wrap at 720px: ${JSON.stringify(wrapped)}`);
  assert.deepEqual(wrapped.broken, [], 'words broken across lines in the Data column');

  // Filtered by type and stream prefix.
  await page.fill('#f-types', 'OrderShipped, OrderPaid');
  await page.fill('#f-prefix', streamId);
  await page.click('form.filters button[type=submit]');
  await waitText(page, '#log-table tbody tr:first-child', 'OrderShipped');
  const types = await page.$$eval('#log-table tbody tr td:nth-child(5)', (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(types, ['OrderShipped', 'OrderPaid'], 'the filtered log');
  await checkA11y(page, 'log');

  // The connection drops and cannot come back for a while: events appended
  // meanwhile arrive after the reconnect, once each and in order (resume from
  // the last position seen).
  await page.goto(`${BASE}/explorer/#/log`);
  await waitText(page, '#conn-text', 'Live: connected');
  const top = Number(await text(page, '#log-table tbody tr:first-child td:first-child'));
  expectWsErrors = true; // the browser logs each refused reconnect
  await context.setOffline(true);
  await page.evaluate(() => window.hindsightExplorer.live.ws.close(4000, 'test: dropped'));
  await waitText(page, '#conn-text', /reconnecting|connecting/, 'the connection state after a drop');
  for (let i = 0; i < 3; i++) {
    await gql(BASE, `mutation($s: String!) { appendToStream(streamId: $s, events: [{type: "WhileAway", data: {i: ${i}}}]) { firstPosition } }`, { s: `${cart}-away` });
  }
  await page.waitForTimeout(1500);
  await context.setOffline(false);
  await waitText(page, '#conn-text', 'Live: connected', 'reconnected after the network came back');
  await waitText(page, '#log-table tbody tr:first-child', 'WhileAway');
  await page.waitForTimeout(500);
  expectWsErrors = false;
  const after = await page.$$eval('#log-table tbody tr', (trs) => trs.slice(0, 4).map((tr) => Number(tr.dataset.pos)));
  assert.deepEqual(after, [top + 3, top + 2, top + 1, top], 'the missed events, once each, in order');
  assert.ok(refusedReconnects > 0, 'reconnects were refused while offline');
  log(`reconnect: ${refusedReconnects} refused while offline, then resumed from the last position seen`);

  // The dashboard: counts by status, revenue, and the charts.
  await page.goto(`${BASE}/explorer/#/dashboard`);
  await page.locator('#count-SHIPPED').waitFor({ timeout: WAIT });
  const stats = (await gql(BASE, '{ orderStats { revenueCents countByStatus { status count } } }')).orderStats;
  const shipped = stats.countByStatus.find((c) => c.status === 'SHIPPED').count;
  await waitText(page, '#count-SHIPPED', String(shipped));
  assert.equal(await page.locator('#revenue').getAttribute('data-cents'), String(stats.revenueCents));
  await page.locator('#chart-revenue svg polyline').waitFor({ state: 'attached', timeout: WAIT });
  await page.locator('#chart-status svg polygon.band').first().waitFor({ state: 'attached', timeout: WAIT });
  assert.equal(await page.locator('#chart-status svg polygon.band').count(), 5, 'one stacked band per status');
  // Steps, not slopes: every edge of a band is horizontal or vertical.
  const sloped = await page.$$eval('#chart-status polygon.band', (ps) => ps.flatMap((p) => {
    const pts = p.getAttribute('points').split(' ').map((xy) => xy.split(',').map(Number));
    return pts.filter((a, i) => { const b = pts[(i + 1) % pts.length]; return a[0] !== b[0] && a[1] !== b[1]; }).map(String);
  }));
  assert.deepEqual(sloped, [], 'the status bands are steps');
  const widths = await page.evaluate(() => [document.querySelector('#chart-status svg').getBoundingClientRect().width,
    document.querySelector('#charts').getBoundingClientRect().width]);
  assert.ok(widths[0] >= widths[1] - 2, `the status chart spans the page: ${widths}`);
  assert.match(await page.inputValue('#series-from'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/, 'the dashboard times are 24-hour ISO');
  await checkA11y(page, 'dashboard');
  await page.screenshot({ path: path.join(ARTIFACTS, 'explorer-dashboard.png'), fullPage: true });

  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page never reloaded');

  // GraphiQL links to the explorer.
  const root = await (await fetch(`${BASE}/`)).text();
  assert.match(root, /href="\/explorer\/"/, 'GraphiQL at / links to the explorer');
  await page.close();
}

/** With auth apikey: the page asks for a token, then sends it on fetch and in connection_init. */
async function authScenario(context, errors) {
  const page = await context.newPage();
  currentPage = page;
  // The refused first request is logged by the browser as a failed resource: expected here.
  watch(page, errors, (msg) => /status of 401/.test(msg));
  await page.goto(`${AUTH_BASE}/explorer/#/log`);
  const dialog = page.locator('#token-dialog');
  await dialog.waitFor({ state: 'visible', timeout: WAIT });
  await page.fill('#token-input', AUTH_KEY);
  await page.click('#token-dialog button[value=save]');
  await dialog.waitFor({ state: 'hidden', timeout: WAIT });
  assert.equal(await page.evaluate(() => sessionStorage.getItem('hindsight.token')), AUTH_KEY, 'the token is kept in sessionStorage');
  await waitText(page, '#conn-text', 'Live: connected', 'the websocket authenticated by connection_init');
  const s = `auth-e2e-${Date.now().toString(36)}`;
  await gql(AUTH_BASE, `mutation($s: String!) { appendToStream(streamId: $s, events: [{type: "Authorized", data: {}}]) { firstPosition } }`, { s }, AUTH_KEY);
  await waitText(page, '#log-table tbody tr:first-child', s, 'a live event through the authenticated subscription');
  await page.reload();
  await waitText(page, '#log-table tbody tr:first-child', s, 'after a reload the stored token is used');
  assert.equal(await dialog.isVisible(), false, 'no second prompt');
  log('auth: token asked once, sent on fetch and in connection_init');
  await page.close();
}

function watch(page, errors, allowed = () => false) {
  page.on('console', (msg) => {
    if (expectWsErrors && /^WebSocket connection to .* failed/.test(msg.text())) {
      refusedReconnects += 1;
      return;
    }
    if (msg.type() === 'error' && !allowed(msg.text())) errors.push(`console: ${msg.text()} ${JSON.stringify(msg.location())}`);
  });
  page.on('pageerror', (err) => errors.push(`uncaught: ${err.stack || err}`));
}

async function main() {
  const errors = [];
  let browser;
  try {
    browser = await launch({ width: 1280, height: 900, timeout: WAIT });
    const { context } = browser;
    await explorerScenario(context, errors);
    if (AUTH_BASE) await authScenario(context, errors);
    else log('auth scenario skipped: HINDSIGHT_AUTH_URL is not set');
  } catch (err) {
    if (currentPage && !currentPage.isClosed()) {
      const shot = path.join(ARTIFACTS, 'explorer-failure.png');
      await mkdir(ARTIFACTS, { recursive: true });
      await currentPage.screenshot({ path: shot, fullPage: true }).then(() => log(`failure screenshot ${shot}`), () => {});
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
