// Page object for the Operations page: table, sorting, filter and the detail view.
import { type Page } from '@playwright/test';

export class OperationsPage {
  constructor(readonly page: Page) {}

  rows() {
    return this.page.getByTestId('op-row');
  }

  row(name: string) {
    return this.page.locator(`[data-testid="op-row"][data-name="${name}"]`);
  }

  async names(): Promise<string[]> {
    return this.rows().evaluateAll((rows) => rows.map((r) => r.getAttribute('data-name') ?? ''));
  }

  count(name: string) {
    return this.row(name).locator('[data-col="count"]');
  }

  async sortBy(key: string) {
    await this.page.getByTestId(`sort-${key}`).click();
  }

  async filter(text: string) {
    await this.page.getByTestId('ops-filter').fill(text);
  }

  /** Picks a live window (`5m`) or a stored range (`24h`) in the range menu. */
  async range(label: string) {
    await this.page.getByTestId('range-select').selectOption(label);
  }

  /** Shows operations or events. */
  async show(kind: 'operations' | 'events') {
    await this.page.getByTestId('ops-kind').selectOption(kind);
  }

  detail() {
    return this.page.getByTestId('op-detail');
  }
}
