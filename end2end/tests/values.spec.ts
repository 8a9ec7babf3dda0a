// The Values page lists StatsD counters, gauges and sets with their readings and draws the
// selected one's stored history; the range and the selection live in the URL.
import { test, expect } from '@playwright/test';
import { AppFrame } from '../pages/app';
import { ValuesPage, sendStatsd } from '../pages/values';
import { RangeControl } from '../pages/range';

test('counters, gauges and sets sent over StatsD are listed and charted from the store', async ({ page }) => {
  await sendStatsd(['e2e.hits:3|c', 'e2e.hits:2|c', 'e2e.depth:7|g', 'e2e.users:a|s', 'e2e.users:b|s', 'e2e.users:a|s']);
  const app = new AppFrame(page);
  const values = new ValuesPage(page);
  await app.open('/');
  await app.expectHydrated();
  await page.getByTestId('nav-values').click();
  await expect(page).toHaveURL(/\/values/);
  await values.filter('e2e.');
  await expect(values.rows()).toHaveCount(3);
  await expect(values.total('counter', 'e2e.hits')).toHaveText('5');
  await expect(values.now('gauge', 'e2e.depth')).toHaveText('7');
  await expect(values.now('set', 'e2e.users')).toHaveText('2 unique this minute');
  await values.row('gauge', 'e2e.depth').click();
  await expect(page).toHaveURL(/kind=gauge&name=e2e\.depth/);
  await expect(page.getByTestId('value-detail').getByRole('heading')).toHaveText('gauge e2e.depth');
  // The minute is written within seconds; the panel refreshes with the live stream.
  await expect(values.chart()).toHaveAttribute('aria-label', /Gauge e2e\.depth .*latest 7/, { timeout: 20_000 });
  await new RangeControl(page).select().selectOption('24h');
  await expect(page).toHaveURL(/range=24h/);
  await expect(values.chart()).toHaveAttribute('aria-label', /over the last 24 h; latest 7/);
  await page.reload();
  await app.expectHydrated();
  await expect(page.getByTestId('range-select')).toHaveValue('24h');
  await expect(values.chart()).toHaveAttribute('aria-label', /latest 7/);
  await values.row('counter', 'e2e.hits').click();
  await expect(values.chart()).toHaveAttribute('aria-label', /Counter e2e\.hits \(increments per minute\).*latest 0\.83\/min/, { timeout: 20_000 });
  app.expectNoConsoleErrors();
});
