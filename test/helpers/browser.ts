import { existsSync } from 'node:fs';
import puppeteer, { type Browser } from 'puppeteer-core';

/** Debian's chromium package (Makefile APT_TEST): the only browser the tests drive. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Launches Debian's chromium headless. Missing, it fails with what to install (make test
 * installs it, so the browser tests never skip). The browser is killed if it does not close
 * within a few seconds, so no chromium outlives a test run.
 */
export async function launchChromium(dataDir: string): Promise<{ browser: Browser; close: () => Promise<void> }> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the console tests need Debian's chromium package (make deps-test, or scripts/ensure-apt.sh chromium)`);
  }
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: dataDir,
    // Root in a container: chromium's sandbox needs user namespaces it may not have.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--window-size=1280,800'],
    defaultViewport: { width: 1280, height: 800 },
    timeout: 30_000,
  });
  const close = async () => {
    const proc = browser.process();
    const killer = setTimeout(() => proc?.kill('SIGKILL'), 5_000);
    try {
      await browser.close();
    } catch {
      proc?.kill('SIGKILL');
    } finally {
      clearTimeout(killer);
    }
  };
  return { browser, close };
}
