// Playwright drives Debian's Chromium against a release build of `vitals` started for the run.
import { defineConfig } from '@playwright/test';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';

const port = Number(process.env.VITALS_E2E_PORT ?? 3107);
/** The StatsD port of the server under test (loopback), for tests that send over UDP. */
export const statsdPort = Number(process.env.VITALS_E2E_STATSD_PORT ?? port + 1);
const bin = process.env.VITALS_BIN ?? path.resolve(__dirname, '../target/release/vitals');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitals-e2e-'));

// Launch flags for Debian's Chromium on this closed network (shared with bench/page-load.mjs).
export const chromiumArgs: string[] = JSON.parse(
  fs.readFileSync(path.join(__dirname, 'chromium-args.json'), 'utf8'),
);

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    browserName: 'chromium',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: chromiumArgs,
    },
    trace: 'off',
  },
  webServer: {
    command: `${bin} serve --port ${port} --statsd 127.0.0.1:${statsdPort} --data-dir ${dataDir}`,
    url: `http://127.0.0.1:${port}/health`,
    reuseExistingServer: false,
    timeout: 30_000,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
