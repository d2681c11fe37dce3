import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chromiumPath } from '../activities/vqa/browser';
import { findOnPath } from './tools';

const run = promisify(execFile);

/**
 * Headless Chromium for the reports (rendered charts, browser checks in the tests): Debian's
 * `chromium` package, installed with apt-get when missing and this user may (root, as in CI).
 * playwright-core drives it; its own browser download cannot work here and is never used.
 */
export async function ensureChromium(log: (line: string) => void = () => {}): Promise<string> {
  try {
    return chromiumPath();
  } catch {
    // not installed yet
  }
  const apt = findOnPath('apt-get');
  if (!apt || process.getuid?.() !== 0) {
    throw new Error('Chromium is missing: install Debian\'s "chromium" package (sudo apt-get install chromium) or set CHROMIUM_PATH');
  }
  log('installing chromium from Debian packages (apt-get, once)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run(apt, ['update'], { env, maxBuffer: 64 * 1024 * 1024 });
  await run(apt, ['install', '-y', '--no-install-recommends', 'chromium'], { env, maxBuffer: 64 * 1024 * 1024 });
  return chromiumPath();
}
