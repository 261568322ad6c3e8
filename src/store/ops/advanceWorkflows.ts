/**
 * Workflow runs in the store: start a run, move it on when its jobs reach a final state (called
 * from the final-state hook, inside the transaction that finished them), cancel it, re-run it
 * from its failed steps. Steps are ordinary jobs, submitted in the same transaction that decided
 * they may run, so a step starts with no poll interval between it and its upstream.
 */
import type { JobSpec, JobState } from '../../core/types.ts';
import { GantryError, notFound } from '../../core/errors.ts';
import { isFinal } from '../../core/states.ts';
import { newId } from '../../core/ids.ts';
import { FINAL_STEP_STATES, descendants, type StepDef, type StepState, type WorkflowDef } from '../../workflows/definition.ts';
import { exprContext, outputsOf, planRun, runState, stepParameters, type RunState, type StepStatus } from '../../workflows/planner.ts';
import { idsIn, type Row, type SqlExecutor, type SqlValue } from '../driver.ts';
import { toJson } from '../rows.ts';
import { findWorkflow, workflowFromRow, type StoredWorkflow } from './createWorkflow.ts';
import { submitJobs } from './submitJobs.ts';
import { cancelJob } from './jobActions.ts';
import { watchJobsLater } from '../finalHooks.ts';
import type { DeliveredJob } from './scheduling.ts';
import { handOffStep } from './handOffStep.ts';

/** Turns a step (with rendered parameters) into a job spec: template, handler or command. */
export type StepJobBuilder = (tx: SqlExecutor, step: StepDef, parameters: Record<string, unknown>, ctx: StepJobContext) => Promise<JobSpec>;
export interface StepJobContext {
  run_id: string;
  workflow_name: string;
  /** For a mapped step, the item's position; else null. */
  map_index: number | null;
  /** The names `{{ … }}` in command and env see. */
  expr: Record<string, unknown>;
}

export interface WorkflowRun {
  id: string;
  workflow_id: string;
  workflow_name: string;
  version: number;
  state: RunState;
  parameters: Record<string, unknown>;
  trigger: { kind: string; schedule_id?: string; fire_time?: string | null };
  rerun_of: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  created_by: string;
}

export interface RunStep {
  step_id: string;
  state: StepState;
  outputs: unknown;
  error: string | null;
  map_total: number | null;
  started_at: number | null;
  finished_at: number | null;
  reused_from: string | null;
  jobs: { job_id: string; map_index: number; state: string }[];
}

/** What a workflow write did that the caller must act on after commit. */
export interface WorkflowEffects {
  /** New jobs were queued: wake the scheduler. */
  submitted: number;
  /** Workers holding jobs that were told to stop. */
  wake_workers: string[];
  /** Runs that reached a final state. */
  finished_runs: string[];
  /**
   * New jobs assigned straight to the worker that finished their upstream, as its poll hands them out:
   * given to its waiting poll with the wake-up after commit. Only a run moved on by its jobs' ends
   * (workflowJobsFinished, the final hook) hands off; starting, cancelling or re-running a run does not.
   */
  hand_offs: { worker: string; job: DeliveredJob }[];
}

export const noEffects = (): WorkflowEffects => ({ submitted: 0, wake_workers: [], finished_runs: [], hand_offs: [] });

const MAX_MAP = 10_000;
const JOB_FINAL: Record<string, StepState> = { COMPLETED: 'SUCCEEDED', FAILED: 'FAILED', TIMEOUT: 'FAILED', CANCELLED: 'CANCELLED' };

export function runFromRow(r: Row): WorkflowRun {
  return {
    id: String(r.id), workflow_id: String(r.workflow_id), workflow_name: String(r.workflow_name), version: Number(r.version),
    state: r.state as RunState, parameters: JSON.parse(String(r.parameters)) as Record<string, unknown>,
    trigger: JSON.parse(String(r.trigger_info)) as WorkflowRun['trigger'], rerun_of: r.rerun_of === null ? null : String(r.rerun_of),
    created_at: Number(r.created_at), updated_at: Number(r.updated_at), finished_at: r.finished_at === null ? null : Number(r.finished_at),
    created_by: String(r.created_by),
  };
}

async function loadRun(tx: SqlExecutor, runId: string): Promise<WorkflowRun> {
  const r = (await tx.query('SELECT * FROM workflow_runs WHERE id = ?', [runId]))[0];
  if (!r) throw notFound('workflow run', runId);
  return runFromRow(r);
}

async function loadSteps(tx: SqlExecutor, runId: string): Promise<Map<string, StepStatus & { map_total: number | null }>> {
  const rows = await tx.query('SELECT step_id, state, outputs, map_total FROM workflow_run_steps WHERE run_id = ?', [runId]);
  return new Map(rows.map((r) => [String(r.step_id), {
    state: r.state as StepState, outputs: r.outputs === null ? null : JSON.parse(String(r.outputs)), map_total: r.map_total === null ? null : Number(r.map_total),
  }]));
}

/** A run with its steps and their jobs (for the API). */
export async function getWorkflowRun(tx: SqlExecutor, runId: string): Promise<{ run: WorkflowRun; steps: RunStep[]; workflow: StoredWorkflow }> {
  const run = await loadRun(tx, runId);
  const wf = workflowFromRow((await tx.query('SELECT * FROM workflows WHERE id = ?', [run.workflow_id]))[0]!);
  const rows = await tx.query('SELECT * FROM workflow_run_steps WHERE run_id = ?', [runId]);
  const jobs = await tx.query('SELECT job_id, step_id, map_index, state FROM workflow_step_jobs WHERE run_id = ? ORDER BY step_id, map_index', [runId]);
  const byStep = new Map<string, RunStep['jobs']>();
  for (const j of jobs) {
    const k = String(j.step_id);
    if (!byStep.has(k)) byStep.set(k, []);
    byStep.get(k)!.push({ job_id: String(j.job_id), map_index: Number(j.map_index), state: String(j.state) });
  }
  const byId = new Map(rows.map((r) => [String(r.step_id), r]));
  const steps = wf.definition.steps.map((d): RunStep => {
    const r = byId.get(d.step_id)!;
    return {
      step_id: d.step_id, state: r.state as StepState, outputs: r.outputs === null ? null : JSON.parse(String(r.outputs)),
      error: r.error === null ? null : String(r.error), map_total: r.map_total === null ? null : Number(r.map_total),
      started_at: r.started_at === null ? null : Number(r.started_at), finished_at: r.finished_at === null ? null : Number(r.finished_at),
      reused_from: r.reused_from === null ? null : String(r.reused_from), jobs: byStep.get(d.step_id) ?? [],
    };
  });
  return { run, steps, workflow: wf };
}

/** Runs of a workflow name (all versions), newest first. */
export async function listWorkflowRuns(tx: SqlExecutor, name: string, limit: number): Promise<WorkflowRun[]> {
  const rows = await tx.query('SELECT * FROM workflow_runs WHERE workflow_name = ? ORDER BY created_at DESC, id DESC LIMIT ?', [name, limit]);
  return rows.map(runFromRow);
}

/**
 * Starts a run of one pinned definition version with `params` over the definition's defaults.
 * `reuse` (re-run) copies those steps' final states and outputs from an earlier run.
 */
export async function startWorkflowRun(
  tx: SqlExecutor, wf: StoredWorkflow, params: Record<string, unknown>, trigger: WorkflowRun['trigger'], actor: string, now: number,
  build: StepJobBuilder, reuse?: { run_id: string; steps: Map<string, StepStatus> },
): Promise<{ run_id: string; effects: WorkflowEffects }> {
  const id = newId('wfr');
  const merged = { ...wf.definition.parameters, ...params };
  await tx.run(
    `INSERT INTO workflow_runs (id, workflow_id, workflow_name, version, state, parameters, trigger_info, rerun_of, created_at, updated_at, finished_at, created_by)
     VALUES (?, ?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?, NULL, ?)`,
    [id, wf.id, wf.name, wf.version, JSON.stringify(merged), JSON.stringify(trigger), reuse?.run_id ?? null, now, now, actor],
  );
  const rows: SqlValue[][] = wf.definition.steps.map((s) => {
    const kept = reuse?.steps.get(s.step_id);
    return kept
      ? [id, s.step_id, kept.state, toJson(kept.outputs), null, null, now, now, reuse!.run_id]
      : [id, s.step_id, 'PENDING', null, null, null, null, null, null];
  });
  await tx.insertMany('workflow_run_steps', ['run_id', 'step_id', 'state', 'outputs', 'error', 'map_total', 'started_at', 'finished_at', 'reused_from'], rows);
  const effects = noEffects();
  await advanceRun(tx, id, now, build, effects);
  return { run_id: id, effects };
}

/**
 * The final-state hook's half: records the given jobs' ends on their steps (outputs from a
 * handler's result or a command's `::output {…}` lines), closes steps whose jobs are all final,
 * and moves each touched run on. Jobs that are not workflow steps cost one indexed lookup.
 */
export async function workflowJobsFinished(tx: SqlExecutor, jobIds: readonly string[], now: number, build: StepJobBuilder, effects = noEffects()): Promise<WorkflowEffects> {
  if (jobIds.length === 0) return effects;
  const sel = idsIn(tx, 'j.id', jobIds);
  const rows = await tx.query(
    `SELECT j.id, j.state, j.kind, j.result, s.run_id, s.step_id, a.worker_id FROM jobs j JOIN workflow_step_jobs s ON s.job_id = j.id
     LEFT JOIN job_attempts a ON a.id = j.current_attempt_id WHERE ${sel.sql}`,
    [sel.param],
  );
  if (rows.length === 0) return effects;
  // Jobs of one run can end in two transactions at once (two workers). Take each run's row lock
  // first (in id order, so two transactions never wait on each other in a circle): the second
  // waits, then sees the first one's step rows and closes the step the first could not.
  const running = new Set<string>();
  for (const runId of [...new Set(rows.map((r) => String(r.run_id)))].sort()) {
    const st = await tx.query<{ state: string }>('UPDATE workflow_runs SET updated_at = ? WHERE id = ? RETURNING state', [now, runId]);
    if (st[0]?.state === 'RUNNING') running.add(runId);
  }
  const touched = new Map<string, Set<string>>();
  for (const r of rows) {
    const state = JOB_FINAL[String(r.state)];
    if (!state) continue;
    let stdout: string | null = null;
    if (r.kind === 'command') {
      const logs = await tx.query(`SELECT data FROM job_logs WHERE job_id = ? AND stream = 'stdout' ORDER BY seq`, [String(r.id)]);
      stdout = logs.map((l) => String(l.data)).join('');
    }
    const outputs = state === 'SUCCEEDED' ? outputsOf(r.result === null ? null : JSON.parse(String(r.result)), stdout) : null;
    // Not waited for (SqlExecutor.later): the statements after it run after it.
    tx.later('UPDATE workflow_step_jobs SET state = ?, outputs = ? WHERE job_id = ?', [String(r.state), toJson(outputs), String(r.id)]);
    const run = String(r.run_id);
    if (!touched.has(run)) touched.set(run, new Set());
    touched.get(run)!.add(String(r.step_id));
  }
  // The worker that finished a run's job may take that run's next step directly (see handOffStep.ts).
  const workerOfRun = new Map<string, string>();
  for (const r of rows) if (r.worker_id) workerOfRun.set(String(r.run_id), String(r.worker_id));
  for (const [runId, stepIds] of touched) {
    if (!running.has(runId)) continue;
    for (const stepId of stepIds) await closeStepIfDone(tx, runId, stepId, now);
    await advanceRun(tx, runId, now, build, effects, workerOfRun.get(runId) ?? null);
  }
  return effects;
}

/** A RUNNING step whose jobs are all final becomes SUCCEEDED (all completed), CANCELLED or FAILED. */
async function closeStepIfDone(tx: SqlExecutor, runId: string, stepId: string, now: number): Promise<void> {
  // Asked for together: one round trip on PostgreSQL (a transaction's statements are pipelined on its
  // connection and run in the order issued), the same three reads one after the other on SQLite.
  const [[step], open, jobs] = await Promise.all([
    tx.query('SELECT state, map_total FROM workflow_run_steps WHERE run_id = ? AND step_id = ?', [runId, stepId]),
    tx.query<{ n: number }>(
      `SELECT COUNT(*) AS n FROM workflow_step_jobs WHERE run_id = ? AND step_id = ? AND state NOT IN ('COMPLETED', 'FAILED', 'TIMEOUT', 'CANCELLED')`,
      [runId, stepId],
    ),
    tx.query('SELECT job_id, state, outputs FROM workflow_step_jobs WHERE run_id = ? AND step_id = ? ORDER BY map_index', [runId, stepId]),
  ]);
  if (!step || step.state !== 'RUNNING') return;
  if (Number(open[0]?.n ?? 0) > 0) return;
  const states = jobs.map((j) => JOB_FINAL[String(j.state)]!);
  const failed = jobs.find((j) => JOB_FINAL[String(j.state)] !== 'SUCCEEDED');
  const state: StepState = !failed ? 'SUCCEEDED' : states.every((s) => s === 'CANCELLED') ? 'CANCELLED' : 'FAILED';
  const outs = jobs.map((j) => (j.outputs === null ? null : JSON.parse(String(j.outputs))));
  const outputs = state !== 'SUCCEEDED' ? null : step.map_total === null ? (outs[0] ?? {}) : outs;
  let error: string | null = null;
  if (failed) {
    const j = (await tx.query('SELECT error, state FROM jobs WHERE id = ?', [String(failed.job_id)]))[0];
    error = `job ${String(failed.job_id)} ${String(j?.state ?? failed.state)}${j?.error ? `: ${String(j.error)}` : ''}`;
  }
  tx.later('UPDATE workflow_run_steps SET state = ?, outputs = ?, error = ?, finished_at = ? WHERE run_id = ? AND step_id = ?', [
    state, toJson(outputs), error, now, runId, stepId,
  ]);
}

/**
 * Decides every step that can be decided (cascading skips), submits the jobs of steps that may
 * run — all in this transaction — and closes the run when every step is final.
 */
export async function advanceRun(
  tx: SqlExecutor, runId: string, now: number, build: StepJobBuilder, effects: WorkflowEffects, handOffTo: string | null = null,
): Promise<void> {
  // Together: one round trip on PostgreSQL (see closeStepIfDone).
  const [run, steps] = await Promise.all([loadRun(tx, runId), loadSteps(tx, runId)]);
  if (run.state !== 'RUNNING') return;
  const def: WorkflowDef = await definitionOf(tx, run.workflow_id);
  const byId = new Map(def.steps.map((s) => [s.step_id, s]));
  const runInfo = { id: run.id, fire_time: run.trigger.fire_time ?? null };
  for (let round = 0; round <= def.steps.length; round++) {
    const ctx = exprContext(run.parameters, steps, runInfo);
    const decisions = planRun(def, steps, ctx);
    if (decisions.length === 0) break;
    const specs: JobSpec[] = [];
    const links: { step_id: string; index: number }[] = [];
    for (const d of decisions) {
      const step = byId.get(d.step_id)!;
      if (d.action !== 'run') {
        const state: StepState = d.action === 'skip' ? 'SKIPPED' : 'UPSTREAM_FAILED';
        await setStep(tx, runId, d.step_id, state, d.reason, now, null);
        steps.set(d.step_id, { state, outputs: null, map_total: null });
        continue;
      }
      const items = d.items;
      if (items && items.length > MAX_MAP) {
        await setStep(tx, runId, d.step_id, 'FAILED', `map: ${items.length} items is over the limit of ${MAX_MAP}`, now, null);
        steps.set(d.step_id, { state: 'FAILED', outputs: null, map_total: null });
        continue;
      }
      let built: JobSpec[];
      try {
        const list = items ? items.map((item, index) => ({ item, index })) : [undefined];
        built = [];
        for (const it of list) {
          const c = it ? { ...ctx, item: it.item, index: it.index } : ctx;
          const params = stepParameters(step, c);
          built.push(await build(tx, step, params, { run_id: runId, workflow_name: def.workflow_name, map_index: it ? it.index : null, expr: c }));
        }
      } catch (err) {
        // A step whose job cannot be made (missing template, bad reference) fails; its downstream follows the rules.
        await setStep(tx, runId, d.step_id, 'FAILED', `could not create the step's job: ${(err as Error).message}`, now, null);
        steps.set(d.step_id, { state: 'FAILED', outputs: null, map_total: null });
        continue;
      }
      if (built.length === 0) {
        tx.later('UPDATE workflow_run_steps SET state = ?, outputs = ?, map_total = 0, started_at = ?, finished_at = ? WHERE run_id = ? AND step_id = ?', [
          'SUCCEEDED', '[]', now, now, runId, d.step_id,
        ]);
        steps.set(d.step_id, { state: 'SUCCEEDED', outputs: [], map_total: 0 });
        continue;
      }
      built.forEach((s, i) => {
        specs.push(s);
        links.push({ step_id: d.step_id, index: i });
      });
      tx.later('UPDATE workflow_run_steps SET state = ?, map_total = ?, started_at = ? WHERE run_id = ? AND step_id = ?', [
        'RUNNING', items ? items.length : null, now, runId, d.step_id,
      ]);
      steps.set(d.step_id, { state: 'RUNNING', outputs: null, map_total: items ? items.length : null });
    }
    if (specs.length > 0) {
      const res = await submitJobs(tx, specs, now, `workflow:${runId}`);
      // Watched: their ends run the final-state hook, which moves this run on.
      watchJobsLater(tx, res.map((r) => r.job.id));
      if (handOffTo !== null) {
        // Until the worker is full or a job is not its to take; the scheduler places the rest.
        for (const r of res) {
          const delivered = await handOffStep(tx, r.job, handOffTo, now);
          if (!delivered) break;
          effects.hand_offs.push({ worker: handOffTo, job: delivered });
        }
      }
      await tx.insertMany('workflow_step_jobs', ['job_id', 'run_id', 'step_id', 'map_index', 'state', 'outputs'],
        res.map((r, i) => [r.job.id, runId, links[i]!.step_id, links[i]!.index, r.job.state, null]));
      effects.submitted += specs.length;
    }
  }
  const state = runState(def, steps);
  if (state !== 'RUNNING') {
    await tx.run('UPDATE workflow_runs SET state = ?, updated_at = ?, finished_at = ? WHERE id = ?', [state, now, now, runId]);
    effects.finished_runs.push(runId);
  }
}

// Definition versions never change: keep them by id instead of reading them for every step.
const definitions = new Map<string, WorkflowDef>();
async function definitionOf(tx: SqlExecutor, workflowId: string): Promise<WorkflowDef> {
  let def = definitions.get(workflowId);
  if (!def) {
    def = workflowFromRow((await tx.query('SELECT * FROM workflows WHERE id = ?', [workflowId]))[0]!).definition;
    if (definitions.size > 10_000) definitions.clear();
    definitions.set(workflowId, def);
  }
  return def;
}

async function setStep(tx: SqlExecutor, runId: string, stepId: string, state: StepState, error: string | null, now: number, outputs: unknown): Promise<void> {
  await tx.run('UPDATE workflow_run_steps SET state = ?, error = ?, outputs = ?, finished_at = ? WHERE run_id = ? AND step_id = ?', [
    state, error, toJson(outputs), now, runId, stepId,
  ]);
}

/**
 * Cancels a RUNNING run: pending steps become CANCELLED, and running steps' jobs are cancelled
 * (jobs on workers are told to stop). Returns the workers to wake.
 */
export async function cancelWorkflowRun(tx: SqlExecutor, runId: string, reason: string, actor: string, now: number): Promise<WorkflowEffects> {
  const run = await loadRun(tx, runId);
  if (run.state !== 'RUNNING') {
    throw new GantryError('CONFLICT', `workflow run ${runId} is ${run.state}; only a RUNNING run can be cancelled`, { run_id: runId, state: run.state });
  }
  const effects = noEffects();
  await tx.run(`UPDATE workflow_runs SET state = 'CANCELLED', updated_at = ?, finished_at = ? WHERE id = ?`, [now, now, runId]);
  const open = await tx.query(
    `SELECT s.job_id, j.state FROM workflow_step_jobs s JOIN jobs j ON j.id = s.job_id WHERE s.run_id = ? AND j.state NOT IN ('COMPLETED', 'FAILED', 'TIMEOUT', 'CANCELLED')`,
    [runId],
  );
  for (const j of open) {
    // A job the scheduler places at the same moment changes state under the cancel, which then does
    // not apply (PostgreSQL re-checks the row): look again until it is cancelled or told to stop.
    for (let attempt = 0; attempt < 5; attempt++) {
      const r = await cancelJob(tx, String(j.job_id), `workflow run ${runId} cancelled: ${reason}`, actor, now);
      if (r.wake_worker) effects.wake_workers.push(r.wake_worker);
      if (r.job.state === 'CANCELLED' || r.job.cancel_requested || isFinal(r.job.state)) break;
    }
  }
  await tx.run(`UPDATE workflow_run_steps SET state = 'CANCELLED', error = ?, finished_at = ? WHERE run_id = ? AND state IN ('PENDING', 'RUNNING')`, [
    `run cancelled: ${reason}`, now, runId,
  ]);
  effects.finished_runs.push(runId);
  return effects;
}

/**
 * Re-runs a FAILED or CANCELLED run as a new run of the same pinned version: steps that
 * SUCCEEDED keep their outputs (and are not run again) unless they are downstream of a step
 * that runs again; `params` edits the run parameters.
 */
export async function rerunWorkflowRun(
  tx: SqlExecutor, runId: string, params: Record<string, unknown>, actor: string, now: number, build: StepJobBuilder,
): Promise<{ run_id: string; effects: WorkflowEffects; reused: string[] }> {
  const old = await loadRun(tx, runId);
  if (old.state !== 'FAILED' && old.state !== 'CANCELLED') {
    throw new GantryError('CONFLICT', `workflow run ${runId} is ${old.state}; only a FAILED or CANCELLED run can be re-run`, { run_id: runId, state: old.state });
  }
  const wf = (await findWorkflow(tx, old.workflow_id))!;
  const steps = await loadSteps(tx, runId);
  const again = wf.definition.steps.filter((s) => steps.get(s.step_id)?.state !== 'SUCCEEDED').map((s) => s.step_id);
  const redo = descendants(wf.definition.steps, again);
  const keep = new Map<string, StepStatus>();
  for (const [id, st] of steps) if (!redo.has(id) && FINAL_STEP_STATES.has(st.state)) keep.set(id, st);
  const started = await startWorkflowRun(tx, wf, { ...old.parameters, ...params }, { kind: 'rerun' }, actor, now, build, { run_id: runId, steps: keep });
  return { ...started, reused: [...keep.keys()] };
}

/** Job ids of a job state list that are final (helper for hooks that pass states). */
export function finalJobIds(jobs: readonly { id: string; state: JobState }[]): string[] {
  return jobs.filter((j) => JOB_FINAL[j.state] !== undefined).map((j) => j.id);
}
