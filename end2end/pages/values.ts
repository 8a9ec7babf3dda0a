// Page object for the Values page (counters, gauges, sets) and a StatsD sender for its tests.
import { type Page } from '@playwright/test';
import * as dgram from 'node:dgram';
import { statsdPort } from '../playwright.config';

/** Sends StatsD lines (one datagram) to the server under test and waits until it is sent. */
export async function sendStatsd(lines: string[]): Promise<void> {
  const socket = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) =>
      socket.send(lines.join('\n'), statsdPort, '127.0.0.1', (e) => (e ? reject(e) : resolve())),
    );
  } finally {
    socket.close();
  }
}

export class ValuesPage {
  constructor(readonly page: Page) {}

  rows() {
    return this.page.getByTestId('value-row');
  }

  row(kind: string, name: string) {
    return this.page.locator(`[data-testid="value-row"][data-kind="${kind}"][data-name="${name}"]`);
  }

  now(kind: string, name: string) {
    return this.row(kind, name).locator('[data-col="now"]');
  }

  total(kind: string, name: string) {
    return this.row(kind, name).locator('[data-col="total"]');
  }

  async filter(text: string) {
    await this.page.getByTestId('values-filter').fill(text);
  }

  chart() {
    return this.page.getByTestId('chart-value').locator('svg');
  }
}
