// Page object for the application frame: navigation, live badge, pause toggle, console errors.
import { expect, type Page, type ConsoleMessage } from '@playwright/test';

export const routes = [
  { path: '/', nav: 'nav-dashboard', testid: 'page-dashboard', heading: 'Dashboard' },
  { path: '/operations', nav: 'nav-operations', testid: 'page-operations', heading: 'Operations' },
  { path: '/alerts', nav: 'nav-alerts', testid: 'page-alerts', heading: 'Alerts' },
  { path: '/reports', nav: 'nav-reports', testid: 'page-reports', heading: 'Reports' },
] as const;

export class AppFrame {
  readonly errors: string[] = [];

  constructor(readonly page: Page) {
    page.on('console', (msg: ConsoleMessage) => {
      if (msg.type() === 'error') this.errors.push(msg.text());
    });
    page.on('pageerror', (err) => this.errors.push(String(err)));
  }

  /** Opens `path` and waits until the page has hydrated: its controls answer from then on. */
  async open(path: string) {
    const response = await this.page.goto(path);
    await this.expectPageHydrated();
    return response;
  }

  /** The page marks itself hydrated once its own (lazily loaded) code runs (app.rs). */
  async expectPageHydrated() {
    await expect(this.page.locator('html[data-hydrated]')).toHaveCount(1);
  }

  pauseToggle() {
    return this.page.getByTestId('pause-toggle');
  }

  liveBadge() {
    return this.page.getByTestId('live-badge');
  }

  /** Hydration is proven when the pause toggle reacts to a click. */
  async expectHydrated() {
    const toggle = this.pauseToggle();
    await expect(toggle).toHaveAttribute('aria-pressed', 'false');
    await expect(async () => {
      await toggle.click();
      await expect(toggle).toHaveAttribute('aria-pressed', 'true', { timeout: 500 });
    }).toPass();
    await expect(this.liveBadge()).toHaveText('Paused');
    await toggle.click();
    await expect(toggle).toHaveAttribute('aria-pressed', 'false');
  }

  expectNoConsoleErrors() {
    expect(this.errors, 'console errors').toEqual([]);
  }
}
