// Debian's Chromium for the browser tests, through playwright-core (npm
// tools cannot download browsers here). e2e/chromium_test.go installs it.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/**
 * Starts headless Chromium with a fresh profile (a persistent context is how
 * playwright takes a --user-data-dir); close() ends it and removes the
 * profile.
 */
export async function launch({ width, height, timeout }) {
  const profile = await mkdtemp(path.join(tmpdir(), 'hindsight-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
      viewport: { width, height },
      locale: 'en-US',
      timezoneId: 'UTC',
    });
    context.setDefaultTimeout(timeout);
    return {
      context,
      async close() {
        await context.close();
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Waits up to wait ms until the first element matching sel has text that
 * contains want (a string) or matches it (a RegExp), and returns the text.
 */
export async function waitText(page, sel, want, what, wait = 15_000) {
  const deadline = Date.now() + wait;
  let last = '';
  while (Date.now() < deadline) {
    try {
      last = await page.locator(sel).first().textContent({ timeout: 1000 });
      if (typeof want === 'string' ? last.includes(want) : want.test(last)) return last;
    } catch {
      // not there yet
    }
    await page.waitForTimeout(100);
  }
  throw new Error(`${what || sel}: want ${want}, have ${JSON.stringify(last)}`);
}
