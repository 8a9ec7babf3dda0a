// What the browser benchmarks share: Debian's Chromium with the tests' flags, and one page load
// measured from the page's own Performance API. playwright-core comes from the browser tests'
// node_modules (no browser download).
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(new URL('../end2end/package.json', import.meta.url));
const { chromium } = require('playwright-core');

// `offline`: no host but localhost and 127.0.0.1 resolves, so a page that calls the internet from
// the browser (Netdata's dashboard calls its registry, GitHub and a news feed) fails those
// requests at once, as on a machine without internet; a benchmark sends nothing off this machine.
export function launch({ offline = false } = {}) {
  const args = JSON.parse(
    readFileSync(new URL('../end2end/chromium-args.json', import.meta.url), 'utf8'),
  );
  if (offline) {
    args.push('--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1');
  }
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args,
    timeout: 60_000,
  });
}

// Loads `url` in `page` and returns its timings. Each load starts on an idle browser: the
// previous page's hydration and live socket settle, and a fresh context's renderer has started
// (as in a browser that is already open) so its start-up is not counted as the page's. A Vitals
// page (`app: true`) is also waited on until it has hydrated, and the time of that is returned.
//
// `network` ({ latencyMs, downMbps, upMbps }) has Chromium emulate a slower link than loopback:
// latency added to each request, throughput capped.
export async function measure(page, url, { app = true, network = null } = {}) {
  if (network) {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: network.latencyMs,
      downloadThroughput: (network.downMbps * 1e6) / 8,
      uploadThroughput: (network.upMbps * 1e6) / 8,
    });
  }
  await page.waitForTimeout(500);
  await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
  await page.waitForFunction(
    (app) =>
      performance.getEntriesByType('navigation')[0]?.loadEventEnd > 0 &&
      performance.getEntriesByType('paint').some((e) => e.name === 'first-contentful-paint') &&
      // Set by the page once it has hydrated (app.rs, `mark_hydrated`).
      (!app || document.documentElement.hasAttribute('data-hydrated')),
    app,
    { timeout: 10_000 },
  );
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const fcp = performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint');
    const resources = performance.getEntriesByType('resource');
    const wasm = resources.find((r) => r.name.endsWith('.wasm'));
    const hydrated = performance.getEntriesByName('vitals:hydrated')[0];
    return {
      ttfb: nav.responseStart,
      fcp: fcp.startTime,
      dcl: nav.domContentLoadedEventEnd,
      load: nav.loadEventEnd,
      wasmEnd: wasm ? wasm.responseEnd : null,
      hydrated: hydrated ? hydrated.startTime : null,
      bytes: nav.transferSize + resources.reduce((sum, r) => sum + (r.transferSize || 0), 0),
      decoded: nav.decodedBodySize + resources.reduce((sum, r) => sum + (r.decodedBodySize || 0), 0),
      requests: 1 + resources.length,
    };
  });
}
