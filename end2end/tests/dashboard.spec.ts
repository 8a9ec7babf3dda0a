// The live dashboard: the badge goes Live, values and charts move, and the page survives the
// server going away and coming back without a reload.
import { test, expect } from '@playwright/test';
import { AppFrame } from '../pages/app';
import { DashboardPage } from '../pages/dashboard';
import { OwnServer } from '../pages/own-server';

test('the dashboard goes live and its numbers and charts move', async ({ page }) => {
  const app = new AppFrame(page);
  const dashboard = new DashboardPage(page);
  await app.open('/');
  // Server-rendered values are there before the socket connects.
  await expect(dashboard.cardValue('cpu')).toHaveText(/%$/);
  await dashboard.expectLive();
  const firstChart = await dashboard.chartSvg('cpu-memory').innerHTML();
  const firstSelf = await page.getByTestId('self-cost').textContent();
  await expect.poll(() => dashboard.chartSvg('cpu-memory').innerHTML(), { timeout: 10_000 }).not.toBe(firstChart);
  await expect.poll(() => page.getByTestId('self-cost').textContent(), { timeout: 10_000 }).not.toBe(firstSelf);
  for (const chart of ['cpu-memory', 'actions', 'queues', 'errors']) {
    await expect(dashboard.chartSvg(chart)).toHaveAttribute('viewBox', /0 0 \d+ \d+/);
  }
  for (const card of ['cpu', 'memory', 'actions', 'success', 'action-queue', 'event-queue', 'errors', 'processes']) {
    await expect(dashboard.card(card)).toBeVisible();
  }
  app.expectNoConsoleErrors();
});

test('refresh now takes a sample at once', async ({ page }) => {
  const dashboard = new DashboardPage(page);
  await page.goto('/');
  await dashboard.expectLive();
  const refresh = page.getByTestId('refresh');
  await refresh.click();
  await expect(refresh).toHaveText('Refresh now');
  await expect(refresh).toBeEnabled();
});

test('the page shows Reconnecting while the server is down and goes Live again by itself', async ({ page }) => {
  const server = new OwnServer(Number(process.env.VITALS_E2E_OWN_PORT ?? 3117));
  await server.start();
  try {
    const dashboard = new DashboardPage(page);
    await page.goto(`http://127.0.0.1:${server.port}/`);
    await dashboard.expectLive();
    await server.stop();
    await expect(page.getByTestId('live-badge')).toHaveText(/Reconnecting \(attempt \d+\)/);
    await server.start();
    await expect(page.getByTestId('live-badge')).toHaveText('Live', { timeout: 20_000 });
    // Still the same page: no reload happened.
    expect(await page.evaluate(() => performance.getEntriesByType('navigation').length)).toBe(1);
  } finally {
    await server.stop();
  }
});
