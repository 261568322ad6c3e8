/**
 * A `gantry worker` in its own process, for tests that kill workers.
 * argv: server token cpu slots [gpus] [grace-ms] [non-retryable-exit-code]. Prints `ready <worker-id>` once registered.
 */
import { startAgent } from '../../src/worker/agent.ts';

const [server, token, cpu, slots, gpus, grace, nonRetryable] = process.argv.slice(2);
const { id, loop } = await startAgent({
  server: server!,
  token: token!,
  cpu_cores: Number(cpu ?? 2),
  memory_gb: 4,
  gpu_count: Number(gpus ?? 0),
  slots: Number(slots ?? 8),
  kill_grace_ms: 1000,
  non_retryable_exit_code: nonRetryable ? Number(nonRetryable) : null,
});
process.stdout.write(`ready ${id}\n`);
process.on('SIGTERM', () => void loop.stop(Number(grace ?? 2000)).then(() => process.exit(0)));
