import type { Page } from 'playwright-core';

/** The page's script errors and console errors, as they happen; a page that works leaves it empty. */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  return errors;
}

/** The natural width of each filmstrip frame of a campaign report, 0 for a frame that did not decode. */
export const filmstripFrameWidths = (page: Page): Promise<number[]> =>
  page.evaluate<number[]>(`[...document.querySelectorAll('.filmstrip .frame img')].map((img) => img.complete ? img.naturalWidth : 0)`);
