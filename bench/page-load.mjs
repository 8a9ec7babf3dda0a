// Page load in headless Chromium: first contentful paint and `load` from the page's own
// Performance API. Cold loads are the first load of a fresh browser context (empty cache);
// warm loads repeat the navigation in one context. Usage:
//   node bench/page-load.mjs --url http://127.0.0.1:PORT/ [--warm 10] [--cold 5]
import { createRequire } from 'node:module';

// playwright-core comes from the browser tests' node_modules (no browser download).
const require = createRequire(new URL('../end2end/package.json', import.meta.url));
const { chromium } = require('playwright-core');

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const url = option('url', 'http://127.0.0.1:3000/');
const warmLoads = Number(option('warm', '10'));
const coldLoads = Number(option('cold', '5'));
const args = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

async function measure(page) {
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

const median = (xs) => {
  const s = xs.filter((x) => x !== null).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const f = (x) => (x === null ? '-' : x.toFixed(1));
const line = (label, r) =>
  `  ${label.padEnd(22)} ttfb ${f(r.ttfb)} ms, FCP ${f(r.fcp)} ms, DOMContentLoaded ${f(r.dcl)} ms, ` +
  `load ${f(r.load)} ms, wasm fetched ${f(r.wasmEnd)} ms, ${r.requests} requests, ` +
  `${r.bytes} B transferred (${r.decoded} B decoded)`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args,
  timeout: 60_000,
});
try {
  console.log(`page-load url=${url} cold=${coldLoads} warm=${warmLoads}`);
  const cold = [];
  let context = null;
  for (let i = 0; i < coldLoads; i++) {
    if (context) await context.close();
    context = await browser.newContext();
    const page = await context.newPage();
    const r = await measure(page);
    cold.push(r);
    console.log(line(`cold load ${i + 1}`, r));
  }
  const page = await context.newPage();
  const warm = [];
  for (let i = 0; i < warmLoads; i++) {
    const r = await measure(page);
    warm.push(r);
    console.log(line(`warm load ${i + 1}`, r));
  }
  await context.close();
  const med = (rs, k) => median(rs.map((r) => r[k]));
  console.log(
    `  median cold            FCP ${f(med(cold, 'fcp'))} ms, load ${f(med(cold, 'load'))} ms, ` +
      `${med(cold, 'bytes')} B transferred`,
  );
  console.log(
    `  median warm            FCP ${f(med(warm, 'fcp'))} ms, load ${f(med(warm, 'load'))} ms, ` +
      `${med(warm, 'bytes')} B transferred`,
  );
  console.log(
    `summary page first_cold_fcp_ms=${f(cold[0].fcp)} first_cold_load_ms=${f(cold[0].load)} ` +
      `cold_fcp_ms=${f(med(cold, 'fcp'))} cold_load_ms=${f(med(cold, 'load'))} ` +
      `warm_fcp_ms=${f(med(warm, 'fcp'))} warm_load_ms=${f(med(warm, 'load'))} ` +
      `cold_bytes=${med(cold, 'bytes')} warm_bytes=${med(warm, 'bytes')}`,
  );
} finally {
  await browser.close();
}
