import { hostname } from 'node:os';
import { GantryClient } from '../client/http.ts';
import { WorkerLoop } from '../client/workerLoop.ts';
import { ProcessExecutor } from '../executors/process.ts';
import { detectCapacity } from './capacity.ts';

export interface AgentOptions {
  /** One server URL, or several on one database (array or comma-separated): the worker fails over between them. */
  server: string | readonly string[];
  token: string;
  name?: string;
  /** Overrides of what is detected. */
  cpu_cores?: number;
  memory_gb?: number;
  gpu_count?: number;
  /** Jobs at once regardless of resources. Default 64. */
  slots?: number;
  labels?: Record<string, string>;
  heartbeat_ms?: number;
  kill_grace_ms?: number;
  /** SIGTERM → SIGKILL of a preempted job that sets no `grace_period` (ms). Default 30 s. */
  preempt_grace_ms?: number;
  non_retryable_exit_code?: number | null;
  onError?: (err: Error) => void;
}

/** The node agent (`gantry worker`): registers this machine's capacity and runs command jobs as process groups. */
export async function startAgent(opts: AgentOptions): Promise<{ loop: WorkerLoop; id: string; capacity: { cpu_cores: number; memory_gb: number; gpu_count: number; slots: number } }> {
  const detected = await detectCapacity();
  const capacity = {
    cpu_cores: opts.cpu_cores ?? detected.cpu_cores,
    memory_gb: opts.memory_gb ?? detected.memory_gb,
    gpu_count: opts.gpu_count ?? detected.gpu_count,
    slots: opts.slots ?? 64,
  };
  const loop = new WorkerLoop(
    new GantryClient({ server: opts.server, token: opts.token }),
    { name: opts.name ?? `${hostname()}:${process.pid}`, kind: 'process', capacity, labels: opts.labels ?? {} },
    new ProcessExecutor({
      kill_grace_ms: opts.kill_grace_ms ?? 5000, preempt_grace_ms: opts.preempt_grace_ms ?? 30_000, non_retryable_exit_code: opts.non_retryable_exit_code ?? null,
    }),
    { heartbeat_ms: opts.heartbeat_ms, poll_wait_ms: 20_000, onError: opts.onError },
  );
  const id = await loop.start();
  return { loop, id, capacity };
}
