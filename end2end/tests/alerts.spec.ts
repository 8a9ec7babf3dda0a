// The Alerts page: a rule made through its form goes pending, fires and resolves with the
// latency of the operation it watches, live, in the page and the header badge, and the
// transitions are listed in the history.
import { test, expect } from '@playwright/test';
import { AppFrame } from '../pages/app';
import { AlertsPage, keepSending } from '../pages/alerts';
import { OperationsPage } from '../pages/operations';

const RULE = 'e2e op slow';
// Not under `e2e.`: the Operations spec counts the operations named so.
const OP = 'alerts-spec.slow.op';

test('a rule made on the page goes pending, fires and resolves with its operation', async ({ page }) => {
  test.setTimeout(120_000);
  const app = new AppFrame(page);
  const alerts = new AlertsPage(page);
  // Reached from the Dashboard in the page, not loaded: the page then asks the open socket for
  // the alerts list (the Dashboard gets only the counts), which the live rows below need.
  await app.open('/');
  await app.expectHydrated();
  await page.getByTestId('nav-alerts').click();
  await expect(page).toHaveURL(/\/alerts$/);
  await expect(page.getByTestId('rules-table')).toBeVisible();
  await expect(alerts.ruleRow(RULE)).toHaveCount(0);
  // Recommendations come from this server's data: none yet, or each with its evidence.
  const advice = page.getByTestId('alerts-recommendations');
  await expect(
    advice.getByTestId('recommendations-empty').or(advice.getByTestId('recommendation').first()),
  ).toBeVisible();

  // The form checks the rule as it is typed, with the server's own validation.
  await alerts.fillRule({
    name: RULE,
    kind: 'operation',
    target: OP,
    stat: 'p95',
    window: '1m',
    direction: 'above',
    warningRaise: '100',
    warningClear: '150',
    forSecs: '3',
  });
  await expect(alerts.formError()).toContainText('warning: clear_below must not be above');
  await alerts.field('warning-clear').fill('50');
  await expect(alerts.formError()).toHaveCount(0);
  await alerts.save();
  await expect(page.getByTestId('rule-saved')).toHaveText(`Saved rule ${RULE}.`);
  await expect(alerts.ruleRow(RULE)).toHaveAttribute('data-source', 'api');
  await expect(alerts.ruleRow(RULE).locator('[data-col="target"]')).toHaveText(`p95 of ${OP} over 1m`);
  await expect(alerts.ruleRow(RULE).locator('[data-col="thresholds"]')).toHaveText(
    'warning > 100 ms, clears at ≤ 50 ms',
  );
  // Saving the same name again is refused by the server, next to the form.
  await alerts.save();
  await expect(alerts.formError()).toContainText(`a rule named ${RULE} exists already`);
  await expect(alerts.alertRows(RULE)).toHaveCount(0);

  // 500 ms timings: p95 over a minute above 100 ms, pending for 3 s, then firing.
  const stopSlow = keepSending([`${OP}:500|ms`]);
  const row = alerts.alertRows(RULE);
  try {
    await expect(row).toHaveAttribute('data-state', 'pending', { timeout: 20_000 });
    await expect(alerts.badge()).toContainText('pending');
    await expect(row).toHaveAttribute('data-state', 'firing', { timeout: 20_000 });
  } finally {
    await stopSlow();
  }
  await expect(row).toHaveCount(1);
  await expect(row).toHaveAttribute('data-severity', 'warning');
  await expect(row.locator('[data-col="value"]')).toContainText('/ 100 ms');
  await expect(alerts.badge()).toContainText(/\d+ warning/);
  await expect(alerts.badge()).toHaveClass(/badge-(warning|critical)/);

  // Acknowledging marks it; it keeps firing.
  await row.getByTestId('alert-ack').click();
  await expect(row.getByTestId('mark-acknowledged')).toBeVisible();
  await expect(row.getByTestId('alert-ack')).toHaveCount(0);
  await expect(row).toHaveAttribute('data-state', 'firing');

  // Thousands of 1 ms timings bring the p95 to or below 50 ms: it resolves.
  const fast = `${OP}:${Array(1000).fill('1').join(':')}|ms`;
  const stopFast = keepSending([fast]);
  try {
    await expect(row).toHaveAttribute('data-state', 'resolved', { timeout: 30_000 });
  } finally {
    await stopFast();
  }

  // The history lists what happened, refreshed as the alerts changed.
  await expect(alerts.historyRows(RULE, 'inactive', 'pending')).toHaveCount(1, { timeout: 15_000 });
  await expect(alerts.historyRows(RULE, 'pending', 'firing')).toHaveCount(1);
  await expect(alerts.historyRows(RULE, 'firing', 'resolved')).toHaveCount(1, { timeout: 15_000 });

  // The operation's charts draw when it fired as a band, named by its rule.
  await app.open('/operations');
  await app.expectHydrated();
  const ops = new OperationsPage(page);
  await ops.range('5m');
  await ops.row(OP).click();
  const band = ops.detail().getByTestId('chart-latency').getByTestId('alert-band');
  await expect(band).toHaveCount(1);
  await expect(band).toHaveAttribute('data-rule', RULE);
  await expect(band).toHaveClass(/warning/);
  await expect(band).toHaveAttribute('title', new RegExp(`^${RULE} \\(warning\\) on ${OP}: from .* until `));
  app.expectNoConsoleErrors();
});

test('beyond the 50 listed, the page says how many alerts there are in all, and rows stay while others change', async ({ page, request }) => {
  test.setTimeout(90_000);
  const rule = 'e2e many slow';
  const ops = Array.from({ length: 55 }, (_, i) => `alerts-spec.many.op${String(i).padStart(2, '0')}`);
  const made = await request.post('/api/v1/alerts/rules', {
    data: {
      name: rule,
      target: { operation: 'alerts-spec.many.*', stat: 'p95', window: '1m' },
      warning: { above: 100, clear_below: 50 },
      min_count: 1,
    },
  });
  expect(made.status(), await made.text()).toBe(201);
  const app = new AppFrame(page);
  const alerts = new AlertsPage(page);
  const stop = keepSending(ops.map((op) => `${op}:500|ms`));
  try {
    await app.open('/alerts');
    await app.expectHydrated();
    // The live list holds the 50 most urgent; the note counts every one.
    await expect(page.getByTestId('alert-row')).toHaveCount(50, { timeout: 20_000 });
    await expect(page.getByTestId('alerts-cut')).toContainText(/^\d+ alerts: the 50 most urgent are listed/);
    const total = Number((await page.getByTestId('alerts-cut').textContent())!.split(' ')[0]);
    expect(total).toBeGreaterThanOrEqual(55);
    await expect(alerts.alertRows(rule).first()).toHaveAttribute('data-state', 'firing');

    // A row stays as it is while other alerts change: a focused button keeps the focus.
    const first = alerts.alertRows(rule).filter({ hasNotText: ops[0] }).first();
    const kept = page.locator(`[data-testid="alert-row"][data-id="${await first.getAttribute('data-id')}"]`);
    await kept.getByTestId('alert-silence').focus();
    await kept.evaluate((row) => row.setAttribute('data-kept', 'yes'));
    // Fast timings resolve the first operation's alert: a new list reaches the page.
    const stopFast = keepSending([`${ops[0]}:${Array(1000).fill('1').join(':')}|ms`]);
    try {
      await expect(alerts.historyRows(rule, 'firing', 'resolved')).toHaveCount(1, { timeout: 30_000 });
    } finally {
      await stopFast();
    }
    await expect(kept).toHaveAttribute('data-kept', 'yes');
    await expect(kept.getByTestId('alert-silence')).toBeFocused();
  } finally {
    await stop();
    await request.delete(`/api/v1/alerts/rules/${encodeURIComponent(rule)}`);
  }
  app.expectNoConsoleErrors();
});
