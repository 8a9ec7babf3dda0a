// Page object for the Operations page: table, sorting, filters, tags and the detail view.
import { type Page } from '@playwright/test';

export class OperationsPage {
  constructor(readonly page: Page) {}

  rows() {
    return this.page.getByTestId('op-row');
  }

  /** The row of `name`; with `tags` (`region=eu`), the row of that group. */
  row(name: string, tags?: string) {
    const group = tags === undefined ? '' : `[data-tags="${tags}"]`;
    return this.page.locator(`[data-testid="op-row"][data-name="${name}"]${group}`);
  }

  async names(): Promise<string[]> {
    return this.rows().evaluateAll((rows) => rows.map((r) => r.getAttribute('data-name') ?? ''));
  }

  count(name: string, tags?: string) {
    return this.row(name, tags).locator('[data-col="count"]');
  }

  /** Keeps only series with the tag `key:value` (typed into the tag field). */
  async addTag(text: string) {
    await this.page.getByTestId('tag-input').fill(text);
    await this.page.getByTestId('tag-add').click();
  }

  tagChip(text: string) {
    return this.page.locator(`[data-testid="tag-chip"][data-tag="${text}"]`);
  }

  async removeTag(text: string) {
    await this.tagChip(text).getByTestId('tag-remove').click();
  }

  /** Groups rows by a tag key; `''` groups by name only. */
  async groupBy(key: string) {
    await this.page.getByTestId('group-by').selectOption(key);
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
