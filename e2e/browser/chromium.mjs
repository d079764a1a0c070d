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
