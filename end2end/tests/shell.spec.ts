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
