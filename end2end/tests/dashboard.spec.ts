// The live dashboard: the badge goes Live, values and charts move, and the page survives the
// server going away and coming back without a reload.
import { test, expect } from '@playwright/test';
import { AppFrame } from '../pages/app';
import { DashboardPage } from '../pages/dashboard';
import { OwnServer } from '../pages/own-server';
import { RangeControl, urlRange } from '../pages/range';

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

test('the socket sends the dashboard only the samples its page did not already have', async ({ page }) => {
  const dashboard = new DashboardPage(page);
  // The first snapshot on the dashboard's socket, as the browser received it.
  const firstSnapshot = new Promise<{ url: string; body: any; bytes: number }>((resolve) => {
    page.on('websocket', (ws) => {
      ws.on('framereceived', (frame) => {
        const text = typeof frame.payload === 'string' ? frame.payload : frame.payload.toString();
        const body = JSON.parse(text);
        if (body.type === 'snapshot') resolve({ url: ws.url(), body, bytes: text.length });
      });
    });
  });
  // Let the server hold some history, so that the page is rendered with several samples.
  await expect.poll(async () => (await (await page.request.get('/api/v1/host')).json()).seq ?? 0,
    { timeout: 10_000 }).toBeGreaterThan(3);
  await page.goto('/');
  await dashboard.expectLive();
  const { url, body, bytes } = await firstSnapshot;
  expect(url).toMatch(/[?&]after=\d+/);
  expect(body.after_seq).toBeGreaterThan(0);
  for (const sample of body.history) expect(sample.seq).toBeGreaterThan(body.after_seq);
  expect(body.history.length).toBeLessThanOrEqual(3);
  expect(body.operations).toEqual([]);
  expect(bytes).toBeLessThan(4_000);
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

test('a stored range redraws the charts from the history store, survives a reload, zooms, and Live resumes', async ({ page }) => {
  const app = new AppFrame(page);
  const dashboard = new DashboardPage(page);
  const range = new RangeControl(page);
  await app.open('/');
  await app.expectHydrated();
  await dashboard.expectLive();
  await range.pick('15m');
  await expect(page).toHaveURL(/[?&]range=15m/);
  await expect(page.getByTestId('history-note')).toContainText('from the history store');
  const cpu = dashboard.chartSvg('cpu-memory');
  await expect(cpu).toHaveAttribute('aria-label', /over the last 15 min/);
  // Raw samples of the seconds the server has run, drawn as a line (or a dot at first).
  await expect(cpu.locator('polyline, circle').first()).toBeAttached({ timeout: 15_000 });
  await page.reload();
  await app.expectHydrated();
  await expect(range.select()).toHaveValue('15m');
  await expect(dashboard.chartSvg('cpu-memory')).toHaveAttribute('aria-label', /over the last 15 min/);
  // Dragging across a chart zooms into that part of the range: fixed bounds, clock labels.
  await range.dragAcross(page.getByTestId('chart-cpu-memory'), 0.5, 0.95);
  await expect.poll(() => urlRange(page)).not.toBeNull();
  const zoomed = urlRange(page)!;
  expect(zoomed.to - zoomed.from).toBeLessThan(15 * 60 * 1000);
  await expect(dashboard.chartSvg('cpu-memory')).toHaveAttribute('data-from-ms', String(zoomed.from));
  await expect(dashboard.chartSvg('cpu-memory')).toHaveAttribute('aria-label', /from .* UTC/);
  // Back to Live: the URL is the plain dashboard and the charts move again.
  await range.pick('1m');
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId('history-note')).toHaveCount(0);
  const before = await dashboard.chartSvg('cpu-memory').innerHTML();
  await expect.poll(() => dashboard.chartSvg('cpu-memory').innerHTML(), { timeout: 10_000 }).not.toBe(before);
  await expect(dashboard.chartSvg('cpu-memory')).toHaveAttribute('aria-label', /over the last 60 s/);
  app.expectNoConsoleErrors();
});

test('the dashboard says so while recording is paused', async ({ page, request }) => {
  const app = new AppFrame(page);
  await app.open('/');
  await app.expectHydrated();
  await expect(page.getByTestId('paused-notice')).toHaveCount(0);
  expect((await request.post('/api/v1/monitor/pause')).status()).toBe(200);
  try {
    await expect(page.getByTestId('paused-notice')).toContainText('Recording is paused', { timeout: 15_000 });
  } finally {
    expect((await request.post('/api/v1/monitor/resume')).status()).toBe(200);
  }
  await expect(page.getByTestId('paused-notice')).toHaveCount(0, { timeout: 15_000 });
});
