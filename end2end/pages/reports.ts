// Page object for the Reports pages: the form for a new report, and one report's sections.
import { expect, type Page, type Request } from '@playwright/test';

export class ReportsPage {
  constructor(readonly page: Page) {}

  async create(name: string, operations = '') {
    await this.page.getByTestId('report-name-input').fill(name);
    await this.page.getByTestId('report-operations').fill(operations);
    await this.page.getByTestId('report-create').click();
    await expect(this.page).toHaveURL(/\/reports\/\d+$/);
    await expect(this.page.getByTestId('report-name')).toHaveText(name);
    return Number(this.page.url().split('/').pop());
  }

  section(id: string) {
    return this.page.locator(`[data-testid="report-section"][data-section="${id}"]`);
  }

  slot(id: string) {
    return this.section(id).getByTestId('section-slot');
  }

  progress() {
    return this.page.getByTestId('report-progress');
  }
}

/** The sections a page asked the server for, in order, read from the server-function calls. */
export function sectionRequests(page: Page): string[] {
  const asked: string[] = [];
  page.on('request', (request: Request) => {
    if (request.url().includes('/rpc/reports/section')) {
      const body = request.postDataJSON() as { section?: string } | null;
      asked.push(body?.section ?? '?');
    }
  });
  return asked;
}
