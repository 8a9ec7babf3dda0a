// The live dashboard: the badge goes Live, values and charts move, and the page survives the
// server going away and coming back without a reload.
import { test, expect } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AppFrame } from '../pages/app';
import { DashboardPage } from '../pages/dashboard';

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

/** A server of this test's own, so it can be stopped and started again on the same port. */
class OwnServer {
  proc?: ChildProcess;
  readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitals-e2e-own-'));

  constructor(readonly port: number) {}

  async start() {
    const bin = process.env.VITALS_BIN ?? path.resolve(__dirname, '../../target/release/vitals');
    this.proc = spawn(bin, ['serve', '--port', String(this.port), '--statsd', 'off', '--data-dir', this.dataDir], {
      stdio: 'ignore',
    });
    await expect
      .poll(async () => {
        try {
          return (await fetch(`http://127.0.0.1:${this.port}/health`)).status;
        } catch {
          return 0;
        }
      }, { timeout: 15_000 })
      .toBe(200);
  }

  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  }
}

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
