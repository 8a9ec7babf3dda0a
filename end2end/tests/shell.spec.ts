// The app shell: every page renders on the server, hydrates, navigates, and logs no errors.
import { test, expect } from '@playwright/test';
import { AppFrame, routes } from '../pages/app';

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  for (const route of routes) {
    test(`${route.path} is readable from the server-rendered HTML`, async ({ page }) => {
      const response = await page.goto(route.path);
      expect(response?.status()).toBe(200);
      await expect(page.getByTestId(route.testid).getByRole('heading', { level: 1 })).toHaveText(
        route.heading,
      );
      await expect(page.getByTestId('brand')).toHaveText(/Vitals/);
      await expect(page).toHaveTitle(`${route.heading} · Vitals`);
    });
  }

  test('an unknown address answers 404 with a helpful page', async ({ page }) => {
    const response = await page.goto('/no/such/page');
    expect(response?.status()).toBe(404);
    await expect(page.getByTestId('page-not-found')).toContainText('Page not found');
  });
});

test.describe('with JavaScript', () => {
  for (const route of routes) {
    test(`${route.path} hydrates without console errors`, async ({ page }) => {
      const app = new AppFrame(page);
      await app.open(route.path);
      await app.expectHydrated();
      app.expectNoConsoleErrors();
    });
  }

  test("the dashboard loads none of the other pages' code; a page's own part comes when it opens", async ({ page }) => {
    // Each page but the Dashboard is a part of the WASM bundle of its own (app.rs, `lazy_page!`).
    const wasm: string[] = [];
    page.on('request', (request) => {
      const name = new URL(request.url()).pathname.split('/').pop() ?? '';
      if (name.endsWith('.wasm')) wasm.push(name);
    });
    const app = new AppFrame(page);
    await app.open('/');
    expect(wasm).toContain('vitals.wasm');
    expect(wasm.filter((name) => name.startsWith('split_'))).toEqual([]);
    await page.getByTestId('nav-reports').click();
    await expect(page.getByTestId('page-reports')).toBeVisible();
    expect(wasm.filter((name) => name.startsWith('split_'))).toEqual([
      expect.stringMatching(/^split___reports_route_view_/),
    ]);
    // Opened directly, a page hydrates with its part, asked for in the HTML beside the bundle.
    await app.open('/alerts');
    await expect(page.locator('link[rel="preload"][href*="/split___alerts_route_view_"]')).toHaveCount(1);
    app.expectNoConsoleErrors();
  });

  test('navigation moves between pages on the client', async ({ page }) => {
    const app = new AppFrame(page);
    await app.open('/');
    await app.expectHydrated();
    for (const route of [...routes].reverse()) {
      await page.getByTestId(route.nav).click();
      await expect(page).toHaveURL(new RegExp(`${route.path === '/' ? '/$' : route.path}$`));
      await expect(page.getByTestId(route.testid)).toBeVisible();
      await expect(page.getByTestId(route.nav)).toHaveAttribute('aria-current', 'page');
    }
    app.expectNoConsoleErrors();
  });
});
