// With a token, a browser signs in once and the whole app, the live stream included, works on
// the session cookie; the token never shows in a URL.
import { test, expect } from '@playwright/test';
import { DashboardPage } from '../pages/dashboard';
import { OwnServer } from '../pages/own-server';

const TOKEN = 'e2e-token-5c1d7a';

test('a browser signs in with the token and the dashboard goes live', async ({ page }) => {
  const server = new OwnServer(Number(process.env.VITALS_E2E_SIGNIN_PORT ?? 3127), ['--token', TOKEN]);
  await server.start();
  try {
    await page.goto(`${server.url}/operations`);
    await expect(page).toHaveURL(/\/login\?next=\/operations$/);
    const form = page.getByTestId('login-form');
    await form.getByLabel('Access token').fill('not-the-token');
    await form.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByTestId('login-error')).toHaveText('Wrong token.');

    await page.getByLabel('Access token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(`${server.url}/operations`);
    await page.goto(`${server.url}/`);
    await new DashboardPage(page).expectLive();
    expect(page.url()).not.toContain(TOKEN);
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'vitals_session');
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe('Strict');
    expect(session?.value).not.toContain(TOKEN);
  } finally {
    await server.stop();
  }
});
