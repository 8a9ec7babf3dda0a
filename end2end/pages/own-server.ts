// A Vitals server of one test's own (beside the run's shared one), so it can be stopped, started
// again on the same port, or run with other flags.
import { expect } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export class OwnServer {
  proc?: ChildProcess;
  readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitals-e2e-own-'));

  constructor(readonly port: number, readonly extraArgs: string[] = []) {}

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    const bin = process.env.VITALS_BIN ?? path.resolve(__dirname, '../../target/release/vitals');
    const args = ['serve', '--port', String(this.port), '--statsd', 'off', '--data-dir', this.dataDir];
    this.proc = spawn(bin, [...args, ...this.extraArgs], { stdio: 'ignore' });
    await expect
      .poll(async () => {
        try {
          return (await fetch(`${this.url}/health`)).status;
        } catch {
          return 0;
        }
      }, { timeout: 15_000 })
      .toBe(200);
  }

  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  }
}
