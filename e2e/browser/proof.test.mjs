// The explorer's proof panel (explorer/static/js/proof.js) in Debian's
// Chromium: the event view of an event in the latest checkpoint says
// "Included in checkpoint N" and lists the three checks it made in the page
// (leaf, path, signature); when the proof the server sends is altered on the
// way (intercepted here), the page says the event is NOT proven. Run by
// e2e/tlog_test.go with HINDSIGHT_URL (a server that has signed a
// checkpoint of HINDSIGHT_SIZE events, the last HINDSIGHT_STREAM's) and
// CHROMIUM.
import assert from 'node:assert/strict';
import { launch } from './chromium.mjs';

const BASE = process.env.HINDSIGHT_URL.replace(/\/$/, '');
const STREAM = process.env.HINDSIGHT_STREAM;
const SIZE = process.env.HINDSIGHT_SIZE;

async function view(context, errors, tamper) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  if (tamper) {
    await page.route('**/graphql', async (route) => {
      const body = route.request().postData() || '';
      if (!body.includes('inclusionProof')) return route.continue();
      const resp = await route.fetch();
      const json = await resp.json();
      const h = json.data.inclusionProof.hashes;
      h[0] = h[0].replace(/^./, (c) => (c === '0' ? '1' : '0')); // one hex digit changed
      return route.fulfill({ response: resp, json });
    });
  }
  await page.goto(`${BASE}/explorer/#/stream/${encodeURIComponent(STREAM)}?v=2`);
  return page;
}

const browser = await launch({ width: 1280, height: 720, timeout: 15_000 });
const { context } = browser;
const errors = [];
try {
  const page = await view(context, errors, false);
  const ok = page.locator('#proof-included');
  await ok.waitFor();
  assert.equal((await ok.textContent()).trim(), `✓ Included in checkpoint ${SIZE}`);
  const checks = await page.locator('#event-proof .proof-checks li').allTextContents();
  assert.equal(checks.length, 3, checks.join('\n'));
  assert.match(checks[0], /^✓ Leaf: the event's fields, encoded canonically, hash to [0-9a-f]{16}…$/);
  assert.match(checks[1], /^✓ Path: \d+ sibling hash(es)? lead to root [0-9a-f]{16}…, the checkpoint's root$/);
  assert.match(checks[2], /^(✓ Signature: the checkpoint ".+", \d+ events, verifies with Ed25519 key .+|– Signature: not checked .*)$/);
  console.log(checks.join('\n'));

  const bad = await view(context, errors, true);
  const failed = bad.locator('#proof-failed');
  await failed.waitFor();
  assert.equal((await failed.textContent()).trim(), `✗ NOT proven to be in checkpoint ${SIZE}`);
  const badChecks = await bad.locator('#event-proof .proof-checks li').allTextContents();
  assert.match(badChecks[1], /^✗ Path: .*, not the checkpoint's root [0-9a-f]{16}…$/);
  assert.deepEqual(errors, []);
  console.log('ok');
} finally {
  await browser.close();
}
