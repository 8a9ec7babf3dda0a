// Page object for the time-range control shared by the Dashboard and the Operations page, and
// for dragging across a time chart to zoom.
import { expect, type Locator, type Page } from '@playwright/test';

export class RangeControl {
  constructor(readonly page: Page) {}

  select() {
    return this.page.getByTestId('range-select');
  }

  /** Picks a choice by its value: `1m` (the Dashboard's Live), `5m`, `24h`, … */
  async pick(value: string) {
    await this.select().selectOption(value);
  }

  /** Types a custom range and applies it. */
  async custom(from: string, to: string) {
    await this.select().selectOption('custom');
    await this.page.getByTestId('range-from').fill(from);
    await this.page.getByTestId('range-to').fill(to);
    await this.page.getByTestId('range-apply').click();
  }

  /** Drags across `chart` (a chart panel) from one share of its width to another. */
  async dragAcross(chart: Locator, fromShare: number, toShare: number) {
    await this.startDrag(chart, fromShare, (fromShare + toShare) / 2);
    await this.endDrag(chart, toShare);
  }

  /** Presses on `chart` at one share of its width and moves to another, holding the button. */
  async startDrag(chart: Locator, fromShare: number, toShare: number) {
    // Below a long table the chart may be out of view, where the pointer cannot reach it; and
    // the table refreshes every few seconds, so a row it gains or loses between measuring the
    // chart and pressing moves the chart away from the pointer. A press that started no drag
    // (no band) is let go (it selects nothing) and tried again where the chart now is.
    await expect(async () => {
      if (await chart.getByTestId('zoom-band').count() === 0) {
        await this.page.mouse.up();
      }
      await chart.scrollIntoViewIfNeeded();
      const box = await this.box(chart);
      await this.page.mouse.move(box.x + box.width * fromShare, box.y + box.height / 2);
      await this.page.mouse.down();
      await this.page.mouse.move(box.x + box.width * toShare, box.y + box.height / 2, { steps: 4 });
      await expect(chart.getByTestId('zoom-band')).toBeVisible({ timeout: 2_000 });
    }).toPass({ timeout: 15_000 });
  }

  /** Moves the held pointer to a share of `chart`'s width and releases it there. */
  async endDrag(chart: Locator, toShare: number) {
    const box = await this.box(chart);
    await this.page.mouse.move(box.x + box.width * toShare, box.y + box.height / 2, { steps: 4 });
    await this.page.mouse.up();
  }

  private async box(chart: Locator) {
    const box = await chart.locator('.chart').boundingBox();
    expect(box).not.toBeNull();
    return box!;
  }
}

/** `from` and `to` of the page's URL, when both are there. */
export function urlRange(page: Page): { from: number; to: number } | null {
  const url = new URL(page.url());
  const from = Number(url.searchParams.get('from'));
  const to = Number(url.searchParams.get('to'));
  return from > 0 && to > 0 ? { from, to } : null;
}
