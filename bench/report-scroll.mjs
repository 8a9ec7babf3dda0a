// A report page in headless Chromium: how long each lazily loaded section takes to appear once
// it is scrolled into view. Each run makes a fresh report over the same closed range (so the
// server computes every section: its cache holds nothing of it) and opens it in a fresh browser
// context (empty cache); once the page has hydrated and the sections one screen ahead are in,
// every section is scrolled to in page order, timed from the scroll to its content being
// painted (the slot's `data-state` turning `ready`, then one animation frame). A section already
// in when scrolled to (loaded one screen ahead) counts as 0 ms. Usage:
//   node bench/report-scroll.mjs --base http://127.0.0.1:PORT --from MS --to MS --glob 'op*' [--runs 5]
import { launch, measure } from './browser.mjs';

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const base = option('base', 'http://127.0.0.1:3000');
const from = Number(option('from', '0'));
const to = Number(option('to', '0'));
const glob = option('glob', '*');
const runs = Number(option('runs', '5'));
const SECTIONS = ['operations', 'latency', 'throughput', 'distributions', 'errors', 'host',
  'alerts', 'recommendations', 'comparison'];

async function createReport(i) {
  const body = { name: `scroll bench ${i}`, from, to, scope: { operations: glob },
    baseline: { from: from - (to - from), to: from } };
  const res = await fetch(`${base}/api/v1/reports`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`POST /api/v1/reports: ${res.status} ${await res.text()}`);
  return (await res.json()).id;
}

const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : null;
};
const f = (x) => (x === null ? '-' : x.toFixed(1));

const browser = await launch();
const perSection = Object.fromEntries(SECTIONS.map((s) => [s, []]));
const fcps = [];
try {
  console.log(`report-scroll base=${base} range=${from}..${to} glob=${glob} runs=${runs}`);
  for (let i = 0; i < runs; i++) {
    const id = await createReport(i);
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    const page = await context.newPage();
    // Cold: a fresh context (empty cache), a report the server has not computed; measured as
    // page-load.mjs measures every other page.
    const { fcp } = await measure(page, `${base}/reports/${id}`);
    fcps.push(fcp);
    // Hydrated (the pause toggle answers a click; clicked back), then the sections already
    // near the viewport settle.
    const toggle = page.getByTestId('pause-toggle');
    for (let tries = 0; ; tries++) {
      await toggle.click();
      if ((await toggle.getAttribute('aria-pressed')) === 'true') break;
      if (tries > 100) throw new Error('the page did not hydrate');
      await page.waitForTimeout(50);
    }
    await toggle.click();
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="section-slot"]')]
      .every((s) => s.dataset.state !== 'loading'), null, { timeout: 30_000 });
    const timings = [];
    for (const section of SECTIONS) {
      const t = await page.evaluate(async (id) => {
        const slot = document.querySelector(`[data-section="${id}"] [data-testid="section-slot"]`);
        const done = () => slot.dataset.state === 'ready' || slot.dataset.state === 'failed';
        const already = done();
        const t0 = performance.now();
        slot.closest('section').scrollIntoView({ block: 'start' });
        if (!already) {
          await new Promise((resolve) => {
            if (done()) return resolve();
            const seen = new MutationObserver(() => { if (done()) { seen.disconnect(); resolve(); } });
            seen.observe(slot, { attributes: true, attributeFilter: ['data-state'] });
          });
          await new Promise((resolve) => requestAnimationFrame(() => resolve()));
        }
        return { ms: already ? 0 : performance.now() - t0, already, state: slot.dataset.state };
      }, section);
      if (t.state !== 'ready') throw new Error(`section ${section} ended ${t.state}`);
      perSection[section].push(t.ms);
      timings.push(`${section} ${t.already ? 'ahead' : f(t.ms) + ' ms'}`);
    }
    console.log(`  run ${i + 1} report ${id}: FCP ${f(fcp)} ms; ${timings.join(', ')}`);
    await context.close();
  }
} finally {
  await browser.close();
}
const all = Object.values(perSection).flat();
for (const s of SECTIONS) {
  const xs = perSection[s];
  console.log(`  ${s.padEnd(16)} median ${f(pct(xs, 0.5))} ms, max ${f(Math.max(...xs))} ms`);
}
console.log(`summary report-scroll runs=${runs} sections=${all.length} p50_ms=${f(pct(all, 0.5))} ` +
  `p90_ms=${f(pct(all, 0.9))} max_ms=${f(Math.max(...all))} fcp_cold_median_ms=${f(pct(fcps, 0.5))}`);
