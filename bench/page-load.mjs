// Page load in headless Chromium: first contentful paint and `load` from the page's own
// Performance API. Cold loads are the first load of a fresh browser context (empty cache);
// warm loads repeat the navigation in one context. Usage:
//   node bench/page-load.mjs --url http://127.0.0.1:PORT/ [--warm 10] [--cold 5] [--pid SERVER_PID]
//                            [--network LATENCY_MS/DOWN_MBPS/UP_MBPS] [--label NAME] [--peer]
// `--network 40/20/5` emulates a link of 40 ms round trip, 20 Mbit/s down and 5 up for every
// load (the floor's included) instead of loopback. `--label` names the page in the summary line.
// `--peer` measures a dashboard that is not Vitals (Glances, Netdata): its loads are not waited
// on for Vitals' hydration mark, which such a page never sets, and its browser is offline
// (browser.mjs, `launch`).
import { createServer } from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';
import { launch, measure } from './browser.mjs';

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const url = option('url', 'http://127.0.0.1:3000/');
const serverPid = Number(option('pid', '0'));
const warmLoads = Number(option('warm', '10'));
const coldLoads = Number(option('cold', '5'));
const networkOption = option('network', null);
const label = option('label', null);
const peer = process.argv.includes('--peer');
const network = networkOption
  ? (([latencyMs, downMbps, upMbps]) => ({ latencyMs, downMbps, upMbps }))(
      networkOption.split('/').map(Number),
    )
  : null;
if (network && Object.values(network).some((v) => !(v >= 0))) {
  console.error(`--network: expected LATENCY_MS/DOWN_MBPS/UP_MBPS, got '${networkOption}'`);
  process.exit(2);
}

// CPU accounting, to tell how much other processes used while pages loaded (in clock ticks).
const TICKS_PER_SEC = 100;
function statFields(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}
// utime + stime + cutime + cstime of a process and its living descendants.
function treeTicks(root) {
  const parent = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    const f = statFields(name);
    if (f) parent.set(Number(name), Number(f[1]));
  }
  let total = 0;
  for (const pid of parent.keys()) {
    let p = pid;
    while (p > 1 && p !== root) p = parent.get(p) ?? 0;
    if (p !== root) continue;
    const f = statFields(pid);
    if (f) total += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return total;
}
function machineBusyTicks() {
  const v = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}
// This script, the browser it launched (its descendants) and the server.
function ourTicks() {
  return treeTicks(process.pid) + (serverPid ? treeTicks(serverPid) : 0);
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
  `load ${f(r.load)} ms, wasm fetched ${f(r.wasmEnd)} ms, hydrated ${f(r.hydrated)} ms, ` +
  `${r.requests} requests, ` +
  `${r.bytes} B transferred (${r.decoded} B decoded)`;

const browser = await launch({ offline: peer });
const startedMs = Date.now();
const machine0 = machineBusyTicks();
const ours0 = ourTicks();
try {
  console.log(`page-load url=${url} cold=${coldLoads} warm=${warmLoads} network=${networkOption ?? 'loopback'}`);
  const cold = [];
  let context = null;
  for (let i = 0; i < coldLoads; i++) {
    if (context) await context.close();
    context = await browser.newContext();
    const page = await context.newPage();
    const r = await measure(page, url, { app: !peer, network });
    cold.push(r);
    console.log(line(`cold load ${i + 1}`, r));
  }
  const page = await context.newPage();
  const warm = [];
  for (let i = 0; i < warmLoads; i++) {
    const r = await measure(page, url, { app: !peer, network });
    warm.push(r);
    console.log(line(`warm load ${i + 1}`, r));
  }
  await context.close();

  // The floor: a one-heading static page from a local server, in the same browser.
  const blank = createServer((_, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><html><head><title>floor</title></head><body><h1>Floor</h1></body></html>');
  });
  await new Promise((resolve) => blank.listen(0, '127.0.0.1', resolve));
  const blankUrl = `http://127.0.0.1:${blank.address().port}/`;
  const floorCold = [];
  for (let i = 0; i < coldLoads; i++) {
    const c = await browser.newContext();
    floorCold.push(await measure(await c.newPage(), blankUrl, { app: false, network }));
    await c.close();
  }
  const floorContext = await browser.newContext();
  const floorPage = await floorContext.newPage();
  const floor = [];
  for (let i = 0; i < warmLoads; i++) {
    floor.push(await measure(floorPage, blankUrl, { app: false, network }));
  }
  await floorContext.close();
  blank.close();

  const otherPct =
    (((machineBusyTicks() - machine0) - (ourTicks() - ours0)) / TICKS_PER_SEC /
      ((Date.now() - startedMs) / 1000)) * 100;
  const med = (rs, k) => median(rs.map((r) => r[k]));
  console.log(`  other processes        ${otherPct.toFixed(1)} % of one core (besides the browser, this script and the server)`);
  console.log(
    `  median static floor    cold FCP ${f(med(floorCold, 'fcp'))} ms, load ${f(med(floorCold, 'load'))} ms; ` +
      `warm FCP ${f(med(floor, 'fcp'))} ms, load ${f(med(floor, 'load'))} ms ` +
      `(a one-heading static page, same browser: the floor of this setup)`,
  );
  console.log(
    `  median cold            FCP ${f(med(cold, 'fcp'))} ms, load ${f(med(cold, 'load'))} ms, ` +
      `hydrated ${f(med(cold, 'hydrated'))} ms, ` +
      `${med(cold, 'bytes')} B transferred`,
  );
  console.log(
    `  median warm            FCP ${f(med(warm, 'fcp'))} ms, load ${f(med(warm, 'load'))} ms, ` +
      `hydrated ${f(med(warm, 'hydrated'))} ms, ` +
      `${med(warm, 'bytes')} B transferred`,
  );
  console.log(
    `summary page ${label ? `label=${label} ` : ''}first_cold_fcp_ms=${f(cold[0].fcp)} first_cold_load_ms=${f(cold[0].load)} ` +
      `cold_fcp_ms=${f(med(cold, 'fcp'))} cold_load_ms=${f(med(cold, 'load'))} ` +
      `warm_fcp_ms=${f(med(warm, 'fcp'))} warm_load_ms=${f(med(warm, 'load'))} ` +
      `cold_hydrated_ms=${f(med(cold, 'hydrated'))} warm_hydrated_ms=${f(med(warm, 'hydrated'))} ` +
      `cold_bytes=${med(cold, 'bytes')} warm_bytes=${med(warm, 'bytes')} ` +
      `floor_cold_fcp_ms=${f(med(floorCold, 'fcp'))} floor_cold_load_ms=${f(med(floorCold, 'load'))} ` +
      `floor_fcp_ms=${f(med(floor, 'fcp'))} floor_load_ms=${f(med(floor, 'load'))} ` +
      `other_pct=${otherPct.toFixed(1)}`,
  );
} finally {
  await browser.close();
}
