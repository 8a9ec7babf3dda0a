// Reports: a report made on the page opens with its Summary already in the HTML; the server
// computes the other sections ahead; the page requests each only as it nears the viewport,
// keeps its placeholder's height until then, loads them in turn as it scrolls, and all render
// without JavaScript.
import { test, expect } from '@playwright/test';
import { AppFrame } from '../pages/app';
import { ReportsPage, sectionRequests } from '../pages/reports';

const LOW = ['host', 'alerts', 'recommendations', 'comparison'];
const ALL = [
  'summary', 'operations', 'latency', 'throughput', 'distributions',
  'errors', 'host', 'alerts', 'recommendations', 'comparison',
];

test('sections load as they scroll into view, and the report reads without JavaScript', async ({ page, browser, request }) => {
  test.setTimeout(60_000);
  const app = new AppFrame(page);
  const reports = new ReportsPage(page);
  await app.open('/reports');
  await app.expectHydrated();
  // A scope nothing matches: every section says so, whatever other specs sent.
  const cacheAtStart = await (await request.get('/api/v1/cache/stats')).json();
  const id = await reports.create('e2e lazy report', 'reports-spec.nothing.*');
  // Opened by navigating in the page (no server HTML for it), the Summary loads in the browser.
  await expect(reports.section('summary')).toContainText('no operation of this scope');
  await expect(reports.progress()).toHaveText(/^[1-9]\d* of 10 sections loaded$/);

  // A fresh load of the report: count what the page asks for before any scroll.
  const cacheBefore = await (await request.get('/api/v1/cache/stats')).json();
  const asked = sectionRequests(page);
  await page.setViewportSize({ width: 1280, height: 720 });
  await app.open(`/reports/${id}`);
  // The Summary came with the HTML (a range without data says so, in words), once: not again
  // as hydration data. Hydration keeps it.
  await expect(reports.section('summary')).toContainText('no operation of this scope');
  const html = await (await request.get(`/reports/${id}`)).text();
  expect(html.split('no operation of this scope').length - 1).toBe(1);
  await app.expectHydrated();
  await expect(reports.section('summary')).toContainText('no operation of this scope');
  await expect(reports.progress()).toHaveText(/^[1-9]\d* of 10 sections loaded$/);
  await expect(reports.slot('operations')).toHaveAttribute('data-state', 'ready');
  // The server computes the other sections ahead of the page (which still asks for each only
  // as it nears the viewport): before any scroll, all ten are in the cache.
  const entries = (stats: { kinds: { entries: number }[] }) =>
    stats.kinds.reduce((n, k) => n + k.entries, 0);
  await expect
    .poll(async () => entries(await (await request.get('/api/v1/cache/stats')).json()) - entries(cacheAtStart))
    .toBeGreaterThanOrEqual(ALL.length);
  // Far below the fold: still waiting, at its placeholder's height, never requested.
  for (const low of LOW) {
    await expect(reports.slot(low)).toHaveAttribute('data-state', 'waiting');
    const box = await reports.slot(low).boundingBox();
    expect(box?.height, low).toBeGreaterThanOrEqual(320);
  }
  expect(asked).not.toContain('summary');
  for (const low of LOW) expect(asked, `asked before scrolling: ${asked}`).not.toContain(low);

  // Scrolling loads every section in turn.
  for (const section of ALL.slice(1)) {
    await reports.section(section).scrollIntoViewIfNeeded();
    await expect(reports.slot(section)).toHaveAttribute('data-state', 'ready');
  }
  await expect(reports.progress()).toHaveText('10 of 10 sections loaded');
  expect(new Set(asked)).toEqual(new Set(ALL.slice(1)));
  await expect(reports.section('summary')).toContainText('no operation of this scope');
  await expect(reports.section('comparison')).toContainText('no baseline was set');
  // The cache served none of them before (a new report) and counted each look-up.
  const cacheAfter = await (await request.get('/api/v1/cache/stats')).json();
  const looked = (stats: { kinds: { hits: number; misses: number }[] }) =>
    stats.kinds.reduce((n, k) => n + k.hits + k.misses, 0);
  expect(looked(cacheAfter) - looked(cacheBefore)).toBeGreaterThanOrEqual(ALL.length);
  app.expectNoConsoleErrors();

  // Without JavaScript, `?full=1` renders every section on the server.
  const noJs = await browser.newContext({ javaScriptEnabled: false });
  const plain = await noJs.newPage();
  await plain.goto(`/reports/${id}`);
  await expect(plain.locator('noscript')).toHaveCount(1);
  await plain.goto(`/reports/${id}?full=1`);
  await expect(plain.getByTestId('report-section')).toHaveCount(ALL.length);
  await expect(plain.getByTestId('section-slot')).toHaveCount(0);
  await expect(plain.getByText('Loading…')).toHaveCount(0);
  await expect(plain.locator('[data-section="summary"]')).toContainText('no operation of this scope');
  await expect(plain.locator('[data-section="comparison"]')).toContainText('no baseline was set');
  await expect(plain.getByTestId('report-progress')).toHaveText('10 of 10 sections loaded');
  // The HTML export is one file that reads the same with JavaScript off.
  const exported = await request.get(`/api/v1/reports/${id}.html`);
  expect(exported.headers()['content-disposition']).toContain(`vitals-report-${id}.html`);
  await plain.setContent(await exported.text());
  await expect(plain.locator('h1')).toHaveText('e2e lazy report');
  await expect(plain.locator('[data-section]')).toHaveCount(ALL.length);
  await expect(plain.locator('[data-section="summary"]')).toContainText('no operation of this scope');
  await noJs.close();
  await expect(page.getByTestId('download-html')).toHaveAttribute('href', `/api/v1/reports/${id}.html`);
});

test('a bad report is refused next to its field, and deleting removes it from the list', async ({ page }) => {
  const app = new AppFrame(page);
  const reports = new ReportsPage(page);
  await app.open('/reports');
  await app.expectHydrated();
  await page.getByTestId('report-range').selectOption({ label: 'Custom' });
  await page.getByTestId('report-from').fill('whenever');
  await page.getByTestId('report-name-input').fill('e2e bad range');
  await page.getByTestId('report-create').click();
  await expect(page.locator('.field-error')).toContainText('from: must be Unix ms');
  await expect(page).toHaveURL(/\/reports$/);
  // A custom range compared with the period before it: the server measures the range.
  await page.getByTestId('report-from').fill('-3h');
  await page.getByTestId('report-to').fill('-2h');
  await page.getByTestId('report-baseline').check();
  await page.getByTestId('report-name-input').fill('e2e custom before');
  await page.getByTestId('report-create').click();
  await expect(page).toHaveURL(/\/reports\/\d+$/);
  await app.open('/reports');
  await app.expectHydrated();

  await page.getByTestId('report-range').selectOption({ label: 'Last hour' });
  const id = await reports.create('e2e deleted report');
  await app.open('/reports');
  await app.expectHydrated();
  const row = page.getByTestId('report-row').filter({ hasText: 'e2e deleted report' });
  await expect(row).toHaveCount(1);
  // One click arms it; the second deletes.
  await row.getByTestId('report-delete').click();
  await expect(row.getByTestId('report-delete')).toHaveText('Really delete?');
  await expect(row).toHaveCount(1);
  await row.getByTestId('report-delete').click();
  await expect(row).toHaveCount(0);
  await app.open(`/reports/${id}`);
  await expect(page.getByRole('heading', { name: 'No such report' })).toBeVisible();
  app.expectNoConsoleErrors();
});

test("a report's Operations table sorts by any figure, busiest first until asked", async ({ page, request }) => {
  const app = new AppFrame(page);
  const reports = new ReportsPage(page);
  // Minutes ago, so the store holds them: many fast, a few medium, very few slow.
  const at = Date.now() - 5 * 60_000;
  const batch = (name: string, n: number, ms: number) =>
    Array.from({ length: n }, () => ({ name, duration_ms: ms, timestamp_ms: at }));
  const operations = [
    ...batch('reports-sort.fast', 30, 5),
    ...batch('reports-sort.medium', 10, 80),
    ...batch('reports-sort.slow', 3, 900),
  ];
  expect((await request.post('/api/v1/ingest', { data: { operations } })).status()).toBe(202);
  await expect.poll(async () => {
    const stored = await (await request.get('/api/v1/operations?from=-1h&limit=1000')).json();
    return stored.operations.filter((o: { name: string }) => o.name.startsWith('reports-sort.')).length;
  }).toBe(3);

  await app.open('/reports');
  await app.expectHydrated();
  await reports.create('e2e sorted report', 'reports-sort.*');
  await app.expectHydrated();
  const ops = reports.section('operations');
  await expect(reports.slot('operations')).toHaveAttribute('data-state', 'ready');
  const names = () => ops.getByTestId('report-op-row').evaluateAll(
    (rows) => rows.map((r) => r.getAttribute('data-name')));
  const [fast, medium, slow] = ['reports-sort.fast', 'reports-sort.medium', 'reports-sort.slow'];
  await expect.poll(names).toEqual([fast, medium, slow]);
  await expect(ops.locator('th[aria-sort="descending"]')).toContainText('Count');

  await ops.getByTestId('sort-p95').click();
  await expect.poll(names).toEqual([slow, medium, fast]);
  await expect(ops.locator('th[aria-sort="descending"]')).toContainText('p95');
  await ops.getByTestId('sort-p95').click();
  await expect.poll(names).toEqual([fast, medium, slow]);
  await expect(ops.locator('th[aria-sort="ascending"]')).toContainText('p95');
  await ops.getByTestId('sort-name').click();
  await expect.poll(names).toEqual([fast, medium, slow]);
  await ops.getByTestId('sort-name').click();
  await expect.poll(names).toEqual([slow, medium, fast]);
  app.expectNoConsoleErrors();
});

test('two tag values are compared over the same range, and a bad tag is refused by its field', async ({ page, request }) => {
  const app = new AppFrame(page);
  // Twelve minutes of one operation in two versions: 1.5 is half again as slow as 1.4.
  const start = Date.now() - 20 * 60_000;
  const operations = [];
  for (let minute = 0; minute < 12; minute++) {
    for (let i = 0; i < 30; i++) {
      const at = start + minute * 60_000 + i * 1_000;
      const jitter = 1 + ((i * 7) % 11) / 50;
      operations.push({ name: 'reports-tag.checkout', duration_ms: 100 * jitter, timestamp_ms: at, tags: { version: '1.4' } });
      operations.push({ name: 'reports-tag.checkout', duration_ms: 150 * jitter, timestamp_ms: at, tags: { version: '1.5' } });
    }
  }
  expect((await request.post('/api/v1/ingest', { data: { operations } })).status()).toBe(202);
  await expect.poll(async () => {
    const stored = await (await request.get('/api/v1/operations?from=-1h&limit=1000')).json();
    const row = stored.operations.find((o: { name: string }) => o.name === 'reports-tag.checkout');
    return row?.count ?? 0;
  }).toBe(720);

  await app.open('/reports');
  await app.expectHydrated();
  const form = page.getByTestId('compare-form');
  await form.getByTestId('compare-before').fill('version 1.4');
  await form.getByTestId('compare-after').fill('version:1.5');
  await form.getByTestId('compare-operations').fill('reports-tag.*');
  await form.getByTestId('compare-run').click();
  await expect(form.locator('.field-error')).toContainText('before.tag');
  await expect(form.getByTestId('compare-result')).toHaveCount(0);

  await form.getByTestId('compare-before').fill('version:1.4');
  await form.getByTestId('compare-run').click();
  const row = form.getByTestId('compare-result').getByTestId('compare-row');
  await expect(row).toHaveCount(1);
  await expect(row).toHaveAttribute('data-name', 'reports-tag.checkout');
  await expect(row).toContainText('360 → 360');
  await expect(row).toContainText('regressed');
  await expect(form.getByTestId('compare-result')).toContainText('(version=1.4)');
  app.expectNoConsoleErrors();
});
