// Page object for the Alerts page: the alerts now, the rules, the new-rule form and the history,
// and a StatsD sender that keeps sending while a test waits for an alert's state.
import { type Page } from '@playwright/test';
import { sendStatsd } from './values';

/** What the new-rule form is filled with (test ids of its fields, minus `rule-`). */
export type RuleFields = {
  name: string;
  kind?: 'operation' | 'event' | 'host' | 'gauge' | 'counter' | 'vitals';
  target?: string;
  stat?: string;
  window?: string;
  direction?: 'above' | 'below';
  warningRaise?: string;
  warningClear?: string;
  criticalRaise?: string;
  criticalClear?: string;
  forSecs?: string;
  keepFiringSecs?: string;
};

/**
 * Sends `lines` over StatsD every `everyMs` until the returned function is called (a data
 * source running beside the test's waits, not a wait).
 */
export function keepSending(lines: string[], everyMs = 250): () => Promise<void> {
  let stopped = false;
  let last: Promise<void> = sendStatsd(lines);
  const timer = setInterval(() => {
    if (!stopped) last = sendStatsd(lines);
  }, everyMs);
  return async () => {
    stopped = true;
    clearInterval(timer);
    await last;
  };
}

export class AlertsPage {
  constructor(readonly page: Page) {}

  badge() {
    return this.page.getByTestId('alerts-badge');
  }

  /** The rows of the alerts now of rule `rule`. */
  alertRows(rule: string) {
    return this.page.locator(`[data-testid="alert-row"][data-rule="${rule}"]`);
  }

  ruleRow(rule: string) {
    return this.page.locator(`[data-testid="rule-row"][data-rule="${rule}"]`);
  }

  historyRows(rule: string, from?: string, to?: string) {
    const change = (from ? `[data-from="${from}"]` : '') + (to ? `[data-to="${to}"]` : '');
    return this.page.locator(`[data-testid="history-row"][data-rule="${rule}"]${change}`);
  }

  form() {
    return this.page.getByTestId('rule-form');
  }

  field(name: string) {
    return this.page.getByTestId(`rule-${name}`);
  }

  formError() {
    return this.page.getByTestId('rule-error');
  }

  async fillRule(r: RuleFields) {
    await this.field('name').fill(r.name);
    if (r.kind) await this.field('kind').selectOption(r.kind);
    if (r.target !== undefined) await this.field('target').fill(r.target);
    if (r.stat) await this.field('stat').selectOption(r.stat);
    if (r.window) await this.field('window').selectOption(r.window);
    if (r.direction) await this.field('direction').selectOption(r.direction);
    const numbers: [string, string | undefined][] = [
      ['warning-raise', r.warningRaise],
      ['warning-clear', r.warningClear],
      ['critical-raise', r.criticalRaise],
      ['critical-clear', r.criticalClear],
      ['for', r.forSecs],
      ['keep-firing', r.keepFiringSecs],
    ];
    for (const [field, value] of numbers) {
      if (value !== undefined) await this.field(field).fill(value);
    }
  }

  async save() {
    await this.field('save').click();
  }
}
