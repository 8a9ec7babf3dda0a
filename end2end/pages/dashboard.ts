// Page object for the dashboard: cards, charts and the live badge.
import { expect, type Page } from '@playwright/test';

export class DashboardPage {
  constructor(readonly page: Page) {}

  card(name: string) {
    return this.page.getByTestId(`card-${name}`);
  }

  cardValue(name: string) {
    return this.card(name).locator('[data-role="value"]');
  }

  chartSvg(name: string) {
    return this.page.getByTestId(`chart-${name}`).locator('svg');
  }

  async expectLive() {
    await expect(this.page.getByTestId('live-badge')).toHaveText('Live');
  }
}
