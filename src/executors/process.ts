import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointFile } from './checkpointFile.ts';
import { rankTagged } from './rankTagged.ts';
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
  /** Where `$GANTRY_CHECKPOINT_FILE` files live (default: the system temp dir). */
  checkpoint_dir?: string;
  /** How often a running job's checkpoint file is looked at (ms). */
  checkpoint_poll_ms: number;
}

interface Running {
  /** The process group of the step running now (null between steps). */
  child: ChildProcess | null;
  ctx: JobContext;
  job: Assignment;
  /** What runs, in order: the job's steps, or its command as one step. */
  steps: { name: string; command: string[]; timeout: number | null }[];
  /** Index of the step running now. */
  step: number;
  /** Why we are stopping it, if we are; `step_timeout` = the current step's own timeout. */
  stopping: 'timeout' | 'step_timeout' | 'cancel' | 'preempt' | 'shutdown' | null;
  paused: boolean;
  /** Active (not paused) run time left before the job's timeout, ms. */
  remaining_ms: number | null;
  /** Active run time left before the current step's timeout, ms. */
  step_remaining_ms: number | null;
  timer: NodeJS.Timeout | null;
  resumed_at: number;
  killTimer: NodeJS.Timeout | null;
  exited: Promise<void>;
  done: () => void;
  /** The attempt's checkpoint file, shared by all its steps. */
  checkpoint: CheckpointFile;
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
 * Kills an executor's process groups when the process running it dies without stopping them (SIGKILL, an OOM kill, a
 * crash): a `sh` in a session of its own reads the groups from a pipe ("+ pgid" when one starts, "- pgid" once it has
 * ended) and, when the pipe closes — at this process's exit, however it came — sends SIGKILL to every group still
 * listed. Without it a killed `gantry worker`'s jobs ran on while the server requeued them elsewhere: the same
 * command twice at once. Where there is no `sh`, jobs run as before, unwatched.
 */
const REAPER_SCRIPT = `g=' '
while read -r op p; do
  case $op in
    +) g="$g$p " ;;
    -) case $g in *" $p "*) g="\${g%% $p *} \${g#* $p }" ;; esac ;;
  esac
done
for p in $g; do kill -KILL -"$p" 2>/dev/null; done`;

class GroupReaper {
  #proc: ChildProcess | null = null;
  /** Groups started and not yet ended, to hand to a new reaper if the last one went away. */
  readonly #groups = new Set<number>();

  add(pgid: number): void {
    this.#groups.add(pgid);
    this.#send(`+ ${pgid}\n`);
  }

  remove(pgid: number): void {
    if (this.#groups.delete(pgid)) this.#send(`- ${pgid}\n`);
  }

  #send(line: string): void {
    if (!this.#proc) {
      let proc: ChildProcess;
      try {
        proc = spawn('/bin/sh', ['-c', REAPER_SCRIPT], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
      } catch {
        return;
      }
      const gone = () => {
        if (this.#proc === proc) this.#proc = null;
      };
      proc.on('error', gone).on('exit', gone);
      proc.stdin!.on('error', gone);
      // Neither the reaper nor its pipe keeps this process alive; its exit closes the pipe.
      proc.unref();
      (proc.stdin as unknown as { unref(): void }).unref();
      this.#proc = proc;
      line = [...this.#groups].map((g) => `+ ${g}\n`).join('');
    }
    this.#proc.stdin!.write(line);
  }
}

/**
 * Runs command jobs as child process groups: argv without a shell, the job's env and working
 * dir, CUDA_VISIBLE_DEVICES set to the assigned GPU indices. Timeout and cancel send SIGTERM to
 * the group and SIGKILL after the grace period; pause/resume send SIGSTOP/SIGCONT, and the
 * timeout clock stops while paused. When the main process exits, what is left of its group is killed; when the process
 * running the executor dies first, a reaper kills its groups (GroupReaper).
 * A job with execution steps (from a template) runs them in order, one process group each, each
 * under its own timeout as well as the job's; the first step that fails, times out or is
 * cancelled ends the job, and its error names the step.
 */
export class ProcessExecutor implements Executor {
  readonly #opts: ProcessExecutorOptions;
  readonly #jobs = new Map<string, Running>();
  readonly #reaper = new GroupReaper();

  constructor(opts: Partial<ProcessExecutorOptions> = {}) {
    this.#opts = { kill_grace_ms: 5000, preempt_grace_ms: 30_000, non_retryable_exit_code: null, checkpoint_poll_ms: 1000, ...opts };
  }

  start(job: Assignment, ctx: JobContext): void {
    if (job.gang) ctx = rankTagged(ctx, job.gang.rank);
    const steps = job.steps?.length ? job.steps : [{ name: '', command: job.command ?? [], timeout: null }];
    if (!steps[0]!.command[0]) {
      ctx.report({ outcome: 'failed', error: 'job has no command', non_retryable: true });
      return;
    }
    const checkpoint = new CheckpointFile(join(this.#opts.checkpoint_dir ?? tmpdir(), `gantry-checkpoint-${job.attempt_id}.json`), (c) => ctx.checkpoint(c), (msg) => ctx.log('stderr', msg));
    let done!: () => void;
    const r: Running = {
      child: null, ctx, job, steps, step: 0, stopping: null, paused: false,
      remaining_ms: job.timeout === null ? null : job.timeout * 1000, step_remaining_ms: null,
      timer: null, resumed_at: Date.now(), killTimer: null, exited: new Promise((res) => (done = res)), done, checkpoint,
    };
    checkpoint.watch(this.#opts.checkpoint_poll_ms);
    this.#jobs.set(job.job_id, r);
    ctx.started();
    this.#runStep(r);
  }

  /** What a step is called in errors and logs: "step train (2/4)"; the empty string for a one-command job. */
  #stepName(r: Running): string {
    return r.job.steps?.length ? `step ${r.steps[r.step]!.name} (${r.step + 1}/${r.steps.length})` : '';
  }

  #runStep(r: Running): void {
    const { job, ctx } = r;
    const step = r.steps[r.step]!;
    const [cmd, ...args] = step.command;
    const env: NodeJS.ProcessEnv = {
      ...(this.#opts.base_env ?? process.env),
      ...job.env,
      CUDA_VISIBLE_DEVICES: job.gpu_indices.join(','),
      GANTRY_JOB_ID: job.job_id,
      GANTRY_ATTEMPT: String(job.attempt),
      GANTRY_TENANT: job.tenant,
      ...(job.gang ? gangEnv(job.gang) : {}),
      ...(job.steps?.length ? { GANTRY_STEP: step.name, GANTRY_STEP_INDEX: String(r.step + 1), GANTRY_STEP_COUNT: String(r.steps.length) } : {}),
      // Write JSON here to checkpoint; the next attempt finds it in GANTRY_CHECKPOINT (and GANTRY_CHECKPOINT_REF for a file reference).
      GANTRY_CHECKPOINT_FILE: r.checkpoint.path,
    };
    if (job.checkpoint) {
      if (job.checkpoint.data !== null && job.checkpoint.data !== undefined) env.GANTRY_CHECKPOINT = JSON.stringify(job.checkpoint.data);
      if (job.checkpoint.file) env.GANTRY_CHECKPOINT_REF = job.checkpoint.file;
    }
    const named = this.#stepName(r);
    if (named) ctx.log('stdout', `[gantry] ${named} started${step.timeout !== null ? ` (timeout ${step.timeout}s)` : ''}\n`);
    const fail = (error: string, exit_code: number | null) => {
      this.#finish(r);
      ctx.report({ outcome: 'failed', error: named ? `${named}: ${error}` : error, exit_code, non_retryable: true });
    };
    if (!cmd) return fail('step has no command', null);
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { cwd: job.working_dir ?? undefined, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      return fail(`cannot start ${cmd}: ${(err as Error).message}`, null);
    }
    r.child = child;
    if (child.pid !== undefined) this.#reaper.add(child.pid);
    r.step_remaining_ms = step.timeout === null ? null : step.timeout * 1000;
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
      if (child.pid !== undefined) this.#reaper.remove(child.pid);
      this.#clearTimers(r);
      r.child = null;
      if (spawnError) {
        const notFound = spawnError.code === 'ENOENT';
        this.#finish(r);
        ctx.report({
          outcome: 'failed',
          exit_code: notFound ? 127 : 126,
          error: (named ? `${named}: ` : '') + (notFound ? `command not found: ${cmd}` : `cannot start ${cmd}: ${spawnError.message}`),
          non_retryable: true,
        });
        return;
      }
      const how = signal ?? 'exit ' + code;
      if (r.stopping === 'shutdown') {
        // Not a failure of the job: the server requeues it when this worker deregisters or is declared lost.
        this.#finish(r);
      } else if (r.stopping === 'timeout') {
        this.#finish(r);
        ctx.report({ outcome: 'timeout', exit_code: code, error: `timed out after ${job.timeout}s${named ? ` in ${named}` : ''} (${how})` });
      } else if (r.stopping === 'step_timeout') {
        this.#finish(r);
        ctx.report({ outcome: 'timeout', exit_code: code, error: `${named} timed out after ${step.timeout}s (${how})` });
      } else if (r.stopping === 'cancel') {
        this.#finish(r);
        ctx.report({ outcome: 'cancelled', exit_code: code });
      } else if (r.stopping === 'preempt') {
        // Whatever it exited with after SIGTERM (a checkpointing job often exits 0 or 143): the server requeues it.
        this.#finish(r);
        ctx.report({ outcome: 'preempted', exit_code: code, error: signal ? `stopped for preemption (${signal})` : null });
      } else if (code === 0 && r.step + 1 < r.steps.length) {
        ctx.log('stdout', `[gantry] ${named} completed\n`);
        ctx.progress((r.step + 1) / r.steps.length);
        r.step++;
        this.#runStep(r);
      } else if (code === 0) {
        if (named) ctx.log('stdout', `[gantry] ${named} completed\n`);
        this.#finish(r);
        ctx.report({ outcome: 'completed', exit_code: 0 });
      } else {
        this.#finish(r);
        const why = signal ? `killed by ${signal}` : `exited with code ${code}`;
        ctx.report({
          outcome: 'failed',
          exit_code: code,
          error: named ? `${named} ${why}` : why,
          non_retryable: code !== null && code === this.#opts.non_retryable_exit_code,
        });
      }
    });
  }

  #finish(r: Running): void {
    this.#clearTimers(r);
    this.#jobs.delete(r.job.job_id);
    // The last checkpoint goes out before the outcome (and before a shutdown deregisters).
    r.checkpoint.finish();
    r.done();
  }

  /** One timer for whichever comes first: the job's timeout or the current step's. */
  #armTimeout(r: Running): void {
    const job = r.remaining_ms;
    const step = r.step_remaining_ms;
    if (job === null && step === null) return;
    r.resumed_at = Date.now();
    const stepFirst = step !== null && (job === null || step < job);
    r.timer = setTimeout(() => this.#stop(r, stepFirst ? 'step_timeout' : 'timeout'), Math.max(0, stepFirst ? step : job!));
  }

  /** Stops the clocks (pause), keeping the active time left. */
  #holdTimeout(r: Running): void {
    if (!r.timer) return;
    clearTimeout(r.timer);
    r.timer = null;
    const ran = Date.now() - r.resumed_at;
    if (r.remaining_ms !== null) r.remaining_ms -= ran;
    if (r.step_remaining_ms !== null) r.step_remaining_ms -= ran;
  }

  #clearTimers(r: Running): void {
    this.#holdTimeout(r);
    if (r.killTimer) clearTimeout(r.killTimer);
    r.timer = r.killTimer = null;
  }

  #stop(r: Running, why: NonNullable<Running['stopping']>): void {
    if (r.stopping) return;
    r.stopping = why;
    if (r.timer) clearTimeout(r.timer);
    r.timer = null;
    const pid = r.child?.pid;
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
      signalGroup(r.child?.pid, 'SIGSTOP');
      r.paused = true;
      this.#holdTimeout(r);
      r.ctx.report({ outcome: 'paused' });
    } else if (control === 'resume' && r.paused) {
      signalGroup(r.child?.pid, 'SIGCONT');
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

/** A gang member's place: rank, size and every member's worker name in rank order (for the job's own rendezvous). */
function gangEnv(g: NonNullable<Assignment['gang']>): Record<string, string> {
  return {
    GANTRY_GANG_RANK: String(g.rank),
    GANTRY_GANG_SIZE: String(g.size),
    GANTRY_GANG_WORKERS: g.workers.map((w) => w.name).join(','),
    GANTRY_GANG_WORKER_IDS: g.workers.map((w) => w.worker_id).join(','),
  };
}
