// What the browser benchmarks share: Debian's Chromium with the tests' flags, and one page load
// measured from the page's own Performance API. playwright-core comes from the browser tests'
// node_modules (no browser download).
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(new URL('../end2end/package.json', import.meta.url));
const { chromium } = require('playwright-core');

export function launch() {
  const args = JSON.parse(
    readFileSync(new URL('../end2end/chromium-args.json', import.meta.url), 'utf8'),
  );
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args,
    timeout: 60_000,
  });
}

// Loads `url` in `page` and returns its timings. Each load starts on an idle browser: the
// previous page's hydration and live socket settle, and a fresh context's renderer has started
// (as in a browser that is already open) so its start-up is not counted as the page's.
export async function measure(page, url) {
  await page.waitForTimeout(500);
  await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
  await page.waitForFunction(
    () =>
      performance.getEntriesByType('navigation')[0]?.loadEventEnd > 0 &&
      performance.getEntriesByType('paint').some((e) => e.name === 'first-contentful-paint'),
    null,
    { timeout: 10_000 },
  );
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const fcp = performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint');
    const resources = performance.getEntriesByType('resource');
    const wasm = resources.find((r) => r.name.endsWith('.wasm'));
    return {
      ttfb: nav.responseStart,
      fcp: fcp.startTime,
      dcl: nav.domContentLoadedEventEnd,
      load: nav.loadEventEnd,
      wasmEnd: wasm ? wasm.responseEnd : null,
      bytes: nav.transferSize + resources.reduce((sum, r) => sum + (r.transferSize || 0), 0),
      decoded: nav.decodedBodySize + resources.reduce((sum, r) => sum + (r.decodedBodySize || 0), 0),
      requests: 1 + resources.length,
    };
  });
}
