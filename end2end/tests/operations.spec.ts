// The Operations page lists posted operations with the right counts, sorts, filters and draws
// the selected operation's charts.
import { test, expect } from '@playwright/test';
import { AppFrame } from '../pages/app';
import { OperationsPage } from '../pages/operations';
import { RangeControl, urlRange } from '../pages/range';

const ops = (name: string, n: number, base: number) =>
  Array.from({ length: n }, (_, i) => ({ name, duration_ms: base + i, success: i !== 0 }));

test.beforeAll(async ({ request }) => {
  const response = await request.post('/api/v1/ingest', {
    data: {
      operations: [...ops('e2e.alpha', 5, 20), ...ops('e2e.beta', 2, 3000), ...ops('e2e.gamma', 9, 150)],
    },
  });
  expect(response.status()).toBe(202);
});

test('posted operations are listed with their counts, sorted and filtered', async ({ page }) => {
  const app = new AppFrame(page);
  const opsPage = new OperationsPage(page);
  await app.open('/operations');
  await opsPage.filter('e2e.');
  await expect(opsPage.rows()).toHaveCount(3);
  await expect(opsPage.count('e2e.alpha')).toHaveText('5');
  await expect(opsPage.count('e2e.beta')).toHaveText('2');
  await expect(opsPage.count('e2e.gamma')).toHaveText('9');
  // Default sort: p95, slowest first.
  expect(await opsPage.names()).toEqual(['e2e.beta', 'e2e.gamma', 'e2e.alpha']);
  await opsPage.sortBy('count');
  await expect.poll(() => opsPage.names()).toEqual(['e2e.gamma', 'e2e.alpha', 'e2e.beta']);
  await opsPage.sortBy('count');
  await expect.poll(() => opsPage.names()).toEqual(['e2e.beta', 'e2e.alpha', 'e2e.gamma']);
  await opsPage.filter('gam');
  await expect(opsPage.rows()).toHaveCount(1);
  await expect(opsPage.row('e2e.beta').locator('.class-badge')).toHaveCount(0);
  app.expectNoConsoleErrors();
});

test('a long list sends its first 200 rows, sorted and filtered by the server, and more on request', async ({ page, request }) => {
  const bulk = Array.from({ length: 230 }, (_, i) => ({ name: `bulk.${String(i).padStart(3, '0')}`, duration_ms: 1 }));
  expect((await request.post('/api/v1/ingest', { data: { operations: bulk } })).status()).toBe(202);
  const app = new AppFrame(page);
  const opsPage = new OperationsPage(page);
  await app.open('/operations');
  await app.expectHydrated();
  await opsPage.filter('bulk.');
  await expect(opsPage.rows()).toHaveCount(200);
  await expect(page.getByTestId('ops-more')).toContainText('Showing the first 200 of 230 matching “bulk.”');
  // Sorting reaches the rows that were not sent: Z to A starts with the last name.
  await opsPage.sortBy('name');
  await expect.poll(async () => (await opsPage.names())[0]).toBe('bulk.000');
  await opsPage.sortBy('name');
  await expect.poll(async () => (await opsPage.names())[0]).toBe('bulk.229');
  await page.getByTestId('ops-show-more').click();
  await expect(opsPage.rows()).toHaveCount(230);
  await expect(page.getByTestId('ops-more')).toHaveCount(0);
  await opsPage.filter('BULK.22');
  await expect(opsPage.rows()).toHaveCount(10);
  await opsPage.filter('no-such-name');
  await expect(page.getByTestId('ops-empty')).toHaveText('No name holds “no-such-name”.');
  app.expectNoConsoleErrors();
});

test('selecting an operation draws its latency, throughput and error-rate charts and histogram', async ({ page }) => {
  const app = new AppFrame(page);
  const opsPage = new OperationsPage(page);
  await app.open('/operations');
  await app.expectHydrated();
  await opsPage.row('e2e.gamma').click();
  await expect(opsPage.detail().getByRole('heading')).toHaveText('e2e.gamma');
  const latency = page.getByTestId('chart-latency').locator('svg');
  await expect(latency).toHaveAttribute('aria-label', /.+/);
  await expect(latency.locator('polyline, path, circle').first()).toBeAttached();
  const histogram = page.getByTestId('chart-histogram').locator('svg rect');
  expect(await histogram.count()).toBeGreaterThan(1);
  // 9 samples, one failed: the throughput and the error rate over time say so.
  const throughput = page.getByTestId('chart-throughput').locator('svg');
  await expect(throughput).toHaveAttribute('aria-label', /Throughput .*latest \d/);
  await expect(throughput.locator('polyline, circle').first()).toBeAttached();
  const errorRate = page.getByTestId('chart-error-rate').locator('svg');
  await expect(errorRate).toHaveAttribute('aria-label', /Error rate .*latest 11(\.1)? % failed/);
  // The failed sample took 150 ms, the others 151–158.
  await expect(page.getByTestId('op-failures')).toHaveText(/^1 failed, taking 150 ms on average; successes 15\d ms\.$/);
  app.expectNoConsoleErrors();
});

test('a link naming an operation (a recommendation\'s) opens its charts, the table filtered to it', async ({ page }) => {
  const app = new AppFrame(page);
  const opsPage = new OperationsPage(page);
  await app.open('/operations?op=e2e.gamma');
  await expect(opsPage.detail().getByRole('heading')).toHaveText('e2e.gamma');
  await expect(page.getByTestId('ops-filter')).toHaveValue('e2e.gamma');
  await expect(opsPage.rows()).toHaveCount(1);
  await app.expectHydrated();
  await expect(page.getByTestId('chart-latency').locator('svg')).toHaveAttribute('aria-label', /.+/);
  // Another range keeps it, in the URL too: a reload shows it again.
  await opsPage.range('15m');
  await expect(page).toHaveURL(/[?&]op=e2e\.gamma/);
  await expect(page).toHaveURL(/range=15m/);
  await page.reload();
  await expect(opsPage.detail().getByRole('heading')).toHaveText('e2e.gamma');
  await app.expectHydrated();
  // Another row can still be chosen, and a range change puts it in the URL.
  await opsPage.filter('e2e.');
  await opsPage.row('e2e.alpha').click();
  await expect(opsPage.detail().getByRole('heading')).toHaveText('e2e.alpha');
  await opsPage.range('1h');
  await expect(page).toHaveURL(/[?&]op=e2e\.alpha/);
  // Back to the page's earlier URL: its operation again.
  await page.goBack();
  await expect(page).toHaveURL(/[?&]op=e2e\.gamma/);
  await expect(opsPage.detail().getByRole('heading')).toHaveText('e2e.gamma');
  app.expectNoConsoleErrors();
});

test('a stored range reads the history store, lives in the URL, survives a reload, and Live comes back', async ({ page, request }) => {
  const threeHoursAgo = Date.now() - 3 * 3600 * 1000;
  const backfill = Array.from({ length: 4 }, () => ({ name: 'e2e.history', duration_ms: 80, timestamp_ms: threeHoursAgo }));
  const response = await request.post('/api/v1/ingest', { data: { operations: backfill } });
  expect(response.status()).toBe(202);
  const app = new AppFrame(page);
  const opsPage = new OperationsPage(page);
  await app.open('/operations');
  await app.expectHydrated();
  await opsPage.range('6h');
  await expect(page).toHaveURL(/[?&]range=6h/);
  await opsPage.filter('e2e.history');
  // Written to the store within a second; the table refreshes every few ticks.
  await expect(opsPage.count('e2e.history')).toHaveText('4', { timeout: 20_000 });
  await expect(page.getByTestId('ops-footnote')).toContainText('history store');
  await page.reload();
  await app.expectHydrated();
  await expect(page.getByTestId('range-select')).toHaveValue('6h');
  await opsPage.filter('e2e.');
  await expect(opsPage.count('e2e.history')).toHaveText('4');
  await opsPage.row('e2e.history').click();
  await expect(page.getByTestId('chart-latency').locator('svg')).toHaveAttribute('aria-label', /.+/);
  // Back to a live window: the three-hour-old samples are not in the last five minutes.
  await opsPage.range('5m');
  await expect(page).toHaveURL(/[?&]range=5m/);
  await expect(opsPage.row('e2e.alpha')).toHaveCount(1);
  await expect(opsPage.row('e2e.history')).toHaveCount(0);
  await expect(page.getByTestId('ops-footnote')).toContainText('(live)');
  app.expectNoConsoleErrors();
});

test('events have a view of their own, kept in the URL with the range', async ({ page, request }) => {
  const events = Array.from({ length: 3 }, (_, i) => ({ name: 'e2e.mail', processing_ms: 30 + i, success: i !== 2 }));
  expect((await request.post('/api/v1/ingest', { data: { events } })).status()).toBe(202);
  const app = new AppFrame(page);
  const opsPage = new OperationsPage(page);
  await app.open('/operations?range=15m');
  await app.expectHydrated();
  await opsPage.show('events');
  await expect(page).toHaveURL(/[?&]of=events/);
  await expect(page).toHaveURL(/[?&]range=15m/);
  await opsPage.filter('e2e.');
  await expect(opsPage.count('e2e.mail')).toHaveText('3');
  await expect(opsPage.row('e2e.alpha')).toHaveCount(0);
  await expect(page.getByTestId('ops-footnote')).toContainText('events over the last 15 min');
  // A keyboard opens a row as a click does.
  await opsPage.row('e2e.mail').focus();
  await page.keyboard.press('Enter');
  await expect(opsPage.detail().getByRole('heading')).toHaveText('e2e.mail');
  await expect(page.getByTestId('chart-histogram').locator('svg rect').first()).toBeAttached();
  app.expectNoConsoleErrors();
});

test('a custom range and a zoom on a chart put fixed bounds in the URL', async ({ page, request }) => {
  const twoHoursAgo = Date.now() - 2 * 3600 * 1000;
  const backfill = Array.from({ length: 6 }, (_, i) => ({ name: 'e2e.custom', duration_ms: 40, success: i !== 0, timestamp_ms: twoHoursAgo }));
  expect((await request.post('/api/v1/ingest', { data: { operations: backfill } })).status()).toBe(202);
  const app = new AppFrame(page);
  const opsPage = new OperationsPage(page);
  const range = new RangeControl(page);
  await app.open('/operations');
  await app.expectHydrated();
  // A bad entry is named and changes nothing.
  await range.custom('yesterday-ish', 'now');
  await expect(page.getByTestId('range-error')).toContainText('from');
  expect(urlRange(page)).toBeNull();
  await range.custom('-3h', 'now');
  await expect.poll(() => urlRange(page)).not.toBeNull();
  const chosen = urlRange(page)!;
  expect(chosen.to - chosen.from).toBeGreaterThan(3 * 3600 * 1000 - 60_000);
  await expect(page.getByTestId('range-shown')).toContainText('UTC');
  await opsPage.filter('e2e.custom');
  await expect(opsPage.count('e2e.custom')).toHaveText('6', { timeout: 20_000 });
  await opsPage.row('e2e.custom').click();
  const latency = page.getByTestId('chart-latency');
  await expect(latency.locator('svg')).toHaveAttribute('data-from-ms', String(chosen.from));
  await expect(page.getByTestId('chart-error-rate').locator('svg')).toHaveAttribute('aria-label', /latest 16\.7 % failed/);
  // Dragging across the middle of the chart narrows the range to that part.
  await range.dragAcross(latency, 0.3, 0.7);
  await expect.poll(() => urlRange(page)?.from).not.toBe(chosen.from);
  const zoomed = urlRange(page)!;
  expect(zoomed.from).toBeGreaterThan(chosen.from);
  expect(zoomed.to).toBeLessThan(chosen.to);
  await page.reload();
  await app.expectHydrated();
  await expect(range.select()).toHaveValue('custom');
  expect(urlRange(page)).toEqual(zoomed);
  app.expectNoConsoleErrors();
});

test('a drag survives the table refreshing under it', async ({ page, request }) => {
  const app = new AppFrame(page);
  const opsPage = new OperationsPage(page);
  const range = new RangeControl(page);
  await app.open('/operations?range=15m');
  await app.expectHydrated();
  await opsPage.row('e2e.gamma').click();
  const latency = page.getByTestId('chart-latency');
  await expect(latency.locator('svg')).toHaveAttribute('data-from-ms', /\d+/);
  await range.startDrag(latency, 0.2, 0.5);
  // While the button is held, new samples arrive and the page refreshes its statistics.
  const arrived = ops('e2e.during-drag', 3, 10);
  expect((await request.post('/api/v1/ingest', { data: { operations: arrived } })).status()).toBe(202);
  await expect(opsPage.count('e2e.during-drag')).toHaveText('3', { timeout: 20_000 });
  await expect(latency.getByTestId('zoom-band')).toBeVisible();
  await range.endDrag(latency, 0.8);
  await expect.poll(() => urlRange(page)).not.toBeNull();
  app.expectNoConsoleErrors();
});

test('a tag filter and a group-by split an operation by its tags, kept in the URL', async ({ page, request }) => {
  const tagged = (region: string, n: number, ms: number) =>
    Array.from({ length: n }, () => ({ name: 'e2e.tagged', duration_ms: ms, tags: { region } }));
  const operations = [...tagged('eu', 3, 100), ...tagged('us', 1, 900)];
  expect((await request.post('/api/v1/ingest', { data: { operations } })).status()).toBe(202);
  const app = new AppFrame(page);
  const opsPage = new OperationsPage(page);
  await app.open('/operations');
  await app.expectHydrated();
  await opsPage.filter('e2e.tagged');
  await expect(opsPage.count('e2e.tagged')).toHaveText('4');
  await opsPage.groupBy('region');
  await expect(page).toHaveURL(/[?&]by=region/);
  await expect(opsPage.rows()).toHaveCount(2);
  await expect(opsPage.count('e2e.tagged', 'region=eu')).toHaveText('3');
  await expect(opsPage.count('e2e.tagged', 'region=us')).toHaveText('1');
  // A typo is named and changes nothing.
  await opsPage.addTag('nocolon');
  await expect(page.getByTestId('tag-error')).toContainText('tag: must be key:value');
  await expect(page).not.toHaveURL(/[?&]tag=/);
  await opsPage.addTag('region:us');
  await expect(page).toHaveURL(/[?&]tag=region%3Aus/);
  await expect(opsPage.rows()).toHaveCount(1);
  await expect(page.getByTestId('ops-footnote')).toContainText('tagged region:us · grouped by region');
  await page.reload();
  await app.expectHydrated();
  await expect(opsPage.tagChip('region:us')).toBeVisible();
  await expect(page.getByTestId('group-by')).toHaveValue('region');
  await opsPage.filter('e2e.tagged');
  await opsPage.row('e2e.tagged', 'region=us').click();
  await expect(opsPage.detail().getByRole('heading')).toHaveText('e2e.tagged · region=us');
  await expect(page.getByTestId('chart-latency').locator('svg')).toHaveAttribute('aria-label', /p50 (89\d|9[01]\d)ms/);
  // The same from the history store.
  await opsPage.range('15m');
  await expect(page).toHaveURL(/[?&]range=15m.*tag=region%3Aus|tag=region%3Aus.*range=15m/);
  await expect(opsPage.count('e2e.tagged', 'region=us')).toHaveText('1', { timeout: 20_000 });
  await opsPage.removeTag('region:us');
  await expect(page).not.toHaveURL(/[?&]tag=/);
  await expect(opsPage.rows()).toHaveCount(2);
  await opsPage.groupBy('');
  await expect(page).not.toHaveURL(/[?&]by=/);
  await expect(opsPage.count('e2e.tagged', '')).toHaveText('4');
  app.expectNoConsoleErrors();
});
