/**
 * Headless Chromium (Debian's `chromium` package, driven by playwright-core): renders the report's
 * chart to PNG, and lets tests open the report as a reader would.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The browser binary: CHROMIUM_PATH, else the Debian package's. */
export function chromiumPath(): string {
  const found = [process.env.CHROMIUM_PATH, ...CANDIDATES].find((p): p is string => p !== undefined && existsSync(p));
  if (!found) throw new Error(`no Chromium found (looked at ${CANDIDATES.join(', ')}); install Debian's chromium package (infra/setup.sh does) or set CHROMIUM_PATH`);
  return found;
}

async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    // Loopback only, no sandbox (root in CI), no GPU, nothing fetched from outside.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--no-first-run'],
  });
}

/** A new page of a headless Chromium launched for `fn` and closed after it. */
export async function withBrowserPage<T>(fn: (page: Page) => Promise<T>, options: { deviceScaleFactor?: number } = {}): Promise<T> {
  const browser = await launchChromium();
  try {
    return await fn(await browser.newPage(options));
  } finally {
    await browser.close();
  }
}

/** PNG of the element `selector` of a self-contained HTML page. */
export function screenshotElement(html: string, selector: string): Promise<Buffer> {
  return withBrowserPage(
    async (page) => {
      await page.setContent(html, { waitUntil: 'load' });
      return page.locator(selector).screenshot({ type: 'png' });
    },
    { deviceScaleFactor: 2 },
  );
}
