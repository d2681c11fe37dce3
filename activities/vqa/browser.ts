/**
 * Headless Chromium (Debian's `chromium` package, driven by playwright-core): renders the report's
 * chart to PNG, and lets tests open the report as a reader would.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The browser binary: CHROMIUM_PATH, else the Debian package's. */
export function chromiumPath(): string {
  const found = [process.env.CHROMIUM_PATH, ...CANDIDATES].find((p): p is string => p !== undefined && existsSync(p));
  if (!found) throw new Error(`no Chromium found (looked at ${CANDIDATES.join(', ')}); install Debian's chromium package (infra/setup.sh does) or set CHROMIUM_PATH`);
  return found;
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    // Loopback only, no sandbox (root in CI), no GPU, nothing fetched from outside.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--no-first-run'],
  });
}

/** PNG of the element `selector` of a self-contained HTML page. */
export async function screenshotElement(html: string, selector: string): Promise<Buffer> {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ deviceScaleFactor: 2 });
    await page.setContent(html, { waitUntil: 'load' });
    return await page.locator(selector).screenshot({ type: 'png' });
  } finally {
    await browser.close();
  }
}
