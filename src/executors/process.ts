import { spawn, type ChildProcess } from 'node:child_process';
import type { Assignment, Control } from '../client/http.ts';
import type { Executor, JobContext } from '../client/workerLoop.ts';

export interface ProcessExecutorOptions {
  /** SIGTERM → SIGKILL grace on timeout and cancel (ms), unless the job sets `grace_period`. */
  kill_grace_ms: number;
  /** SIGTERM → SIGKILL grace on preemption (ms), unless the job sets `grace_period`: time to write a checkpoint. */
  preempt_grace_ms: number;
  /** Exit code a process uses to say "do not retry me". */
  non_retryable_exit_code: number | null;
  /** Environment every job starts from (defaults to this process's). */
  base_env?: NodeJS.ProcessEnv;
}

interface Running {
  child: ChildProcess;
  ctx: JobContext;
  job: Assignment;
  /** Why we are stopping it, if we are. */
  stopping: 'timeout' | 'cancel' | 'preempt' | 'shutdown' | null;
  paused: boolean;
  /** Active (not paused) run time left before the timeout, ms. */
  remaining_ms: number | null;
  timer: NodeJS.Timeout | null;
  resumed_at: number;
  killTimer: NodeJS.Timeout | null;
  exited: Promise<void>;
}

/** Sends a signal to a whole process group; a group already gone is fine. */
function signalGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    /* ESRCH: the group is gone */
  }
}

/**
 * Runs command jobs as child process groups: argv without a shell, the job's env and working
 * dir, CUDA_VISIBLE_DEVICES set to the assigned GPU indices. Timeout and cancel send SIGTERM to
 * the group and SIGKILL after the grace period; pause/resume send SIGSTOP/SIGCONT, and the
 * timeout clock stops while paused. When the main process exits, what is left of its group is killed.
 */
export class ProcessExecutor implements Executor {
  readonly #opts: ProcessExecutorOptions;
  readonly #jobs = new Map<string, Running>();

  constructor(opts: Partial<ProcessExecutorOptions> = {}) {
    this.#opts = { kill_grace_ms: 5000, preempt_grace_ms: 30_000, non_retryable_exit_code: null, ...opts };
  }

  start(job: Assignment, ctx: JobContext): void {
    const [cmd, ...args] = job.command ?? [];
    if (!cmd) {
      ctx.report({ outcome: 'failed', error: 'job has no command', non_retryable: true });
      return;
    }
    const env: NodeJS.ProcessEnv = {
      ...(this.#opts.base_env ?? process.env),
      ...job.env,
      CUDA_VISIBLE_DEVICES: job.gpu_indices.join(','),
      GANTRY_JOB_ID: job.job_id,
      GANTRY_ATTEMPT: String(job.attempt),
      GANTRY_TENANT: job.tenant,
    };
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { cwd: job.working_dir ?? undefined, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      ctx.report({ outcome: 'failed', error: `cannot start ${cmd}: ${(err as Error).message}`, exit_code: null, non_retryable: true });
      return;
    }
    let resolveExit!: () => void;
    const r: Running = {
      child, ctx, job, stopping: null, paused: false, remaining_ms: job.timeout === null ? null : job.timeout * 1000,
      timer: null, resumed_at: Date.now(), killTimer: null, exited: new Promise((res) => (resolveExit = res)),
    };
    this.#jobs.set(job.job_id, r);
    ctx.started();
    child.stdout!.setEncoding('utf8').on('data', (d: string) => ctx.log('stdout', d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => ctx.log('stderr', d));
    this.#armTimeout(r);

    let spawnError: NodeJS.ErrnoException | null = null;
    child.on('error', (err: NodeJS.ErrnoException) => {
      spawnError = err;
    });
    // 'close' waits for stdout/stderr to drain, so every line is captured before the report.
    child.on('close', (code, signal) => {
      signalGroup(child.pid, 'SIGKILL');
      this.#clearTimers(r);
      this.#jobs.delete(job.job_id);
      resolveExit();
      if (spawnError) {
        const notFound = spawnError.code === 'ENOENT';
        ctx.report({
          outcome: 'failed',
          exit_code: notFound ? 127 : 126,
          error: notFound ? `command not found: ${cmd}` : `cannot start ${cmd}: ${spawnError.message}`,
          non_retryable: true,
        });
        return;
      }
      if (r.stopping === 'timeout') {
        ctx.report({ outcome: 'timeout', exit_code: code, error: `timed out after ${job.timeout}s (${signal ?? 'exit ' + code})` });
      } else if (r.stopping === 'cancel') {
        ctx.report({ outcome: 'cancelled', exit_code: code });
      } else if (r.stopping === 'preempt') {
        // Whatever it exited with after SIGTERM (a checkpointing job often exits 0 or 143): the server requeues it.
        ctx.report({ outcome: 'preempted', exit_code: code, error: signal ? `stopped for preemption (${signal})` : null });
      } else if (r.stopping === 'shutdown') {
        // Not a failure of the job: the server requeues it when this worker deregisters or is declared lost.
      } else if (code === 0) {
        ctx.report({ outcome: 'completed', exit_code: 0 });
      } else {
        ctx.report({
          outcome: 'failed',
          exit_code: code,
          error: signal ? `killed by ${signal}` : `exited with code ${code}`,
          non_retryable: code !== null && code === this.#opts.non_retryable_exit_code,
        });
      }
    });
  }

  #armTimeout(r: Running): void {
    if (r.remaining_ms === null) return;
    r.resumed_at = Date.now();
    r.timer = setTimeout(() => this.#stop(r, 'timeout'), Math.max(0, r.remaining_ms));
  }

  #clearTimers(r: Running): void {
    if (r.timer) clearTimeout(r.timer);
    if (r.killTimer) clearTimeout(r.killTimer);
    r.timer = r.killTimer = null;
  }

  #stop(r: Running, why: NonNullable<Running['stopping']>): void {
    if (r.stopping) return;
    r.stopping = why;
    if (r.timer) clearTimeout(r.timer);
    const pid = r.child.pid;
    if (r.paused) signalGroup(pid, 'SIGCONT'); // a stopped process cannot act on SIGTERM
    signalGroup(pid, 'SIGTERM');
    const grace = r.job.grace_period != null ? r.job.grace_period * 1000 : why === 'preempt' ? this.#opts.preempt_grace_ms : this.#opts.kill_grace_ms;
    r.killTimer = setTimeout(() => signalGroup(pid, 'SIGKILL'), grace);
  }

  control(jobId: string, control: Control['control']): void {
    const r = this.#jobs.get(jobId);
    if (!r || r.stopping) return;
    if (control === 'cancel') return this.#stop(r, 'cancel');
    if (control === 'preempt') return this.#stop(r, 'preempt');
    if (control === 'pause' && !r.paused) {
      signalGroup(r.child.pid, 'SIGSTOP');
      r.paused = true;
      if (r.timer) {
        clearTimeout(r.timer);
        r.timer = null;
        r.remaining_ms = (r.remaining_ms ?? 0) - (Date.now() - r.resumed_at);
      }
      r.ctx.report({ outcome: 'paused' });
    } else if (control === 'resume' && r.paused) {
      signalGroup(r.child.pid, 'SIGCONT');
      r.paused = false;
      this.#armTimeout(r);
      r.ctx.report({ outcome: 'resumed' });
    }
  }

  async stopAll(): Promise<void> {
    const all = [...this.#jobs.values()];
    for (const r of all) this.#stop(r, 'shutdown');
    await Promise.all(all.map((r) => r.exited));
  }
}
