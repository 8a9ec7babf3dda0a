// The Operations page lists posted operations with the right counts, sorts, filters and draws
// the selected operation's charts.
import { test, expect } from '@playwright/test';
import { AppFrame } from '../pages/app';
import { OperationsPage } from '../pages/operations';

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

test('selecting an operation draws its latency chart and histogram', async ({ page }) => {
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
  await expect(page.getByTestId('ops-window')).toHaveValue('6h');
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
  await expect(page.getByTestId('ops-footnote')).toContainText('events over the last 15m');
  await opsPage.row('e2e.mail').click();
  await expect(opsPage.detail().getByRole('heading')).toHaveText('e2e.mail');
  await expect(page.getByTestId('chart-histogram').locator('svg rect').first()).toBeAttached();
  app.expectNoConsoleErrors();
});
