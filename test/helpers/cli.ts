import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { TestCluster } from './cluster.ts';

const BIN = resolve(import.meta.dirname, '../../bin/gantry.js');

/** Runs the `gantry` CLI as a child process against a test cluster's server, with its admin token. */
export function runGantry(cl: TestCluster, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, '--server', cl.server.url, '--token', cl.server.admin_token!, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', fail);
    child.on('close', (code) => (clearTimeout(timer), done({ code, stdout, stderr })));
  });
}
