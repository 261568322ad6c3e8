/**
 * What a workflow run does next, as pure functions of its definition and its steps' states:
 * trigger rules (Airflow's set), `when` conditions, `map` lists, `{{ … }}` parameters, and the
 * run's own final state. The store operation (src/store/ops/advanceWorkflows.ts) applies it.
 */
import type { StepDef, StepState, TriggerRule, WorkflowDef } from './definition.ts';
import { FINAL_STEP_STATES } from './definition.ts';
import { evalCondition, evalExpr, parseExpr, renderValue } from './expr.ts';

export interface StepStatus {
  state: StepState;
  outputs: unknown;
}

export type RunState = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

/** A decision about one PENDING step. */
export type Decision =
  | { step_id: string; action: 'run'; items: unknown[] | null }
  | { step_id: string; action: 'skip' | 'upstream_failed'; reason: string };

const FAILED_LIKE: ReadonlySet<StepState> = new Set(['FAILED', 'UPSTREAM_FAILED', 'CANCELLED']);

/**
 * Trigger rule verdict for a step given its upstream states: 'wait' (not yet decidable), 'run',
 * 'skip' or 'upstream_failed'. Semantics as in Airflow: one_success / one_failed fire as soon as
 * one upstream step qualifies; `always` does not wait for upstream at all. A cancelled upstream
 * step counts as failed.
 */
export function triggerVerdict(rule: TriggerRule, upstream: readonly StepState[]): 'wait' | 'run' | 'skip' | 'upstream_failed' {
  if (rule === 'always' || upstream.length === 0) return 'run';
  const done = upstream.filter((s) => FINAL_STEP_STATES.has(s));
  const all = done.length === upstream.length;
  const ok = done.filter((s) => s === 'SUCCEEDED').length;
  const failed = done.filter((s) => FAILED_LIKE.has(s)).length;
  const skipped = done.filter((s) => s === 'SKIPPED').length;
  switch (rule) {
    case 'all_success':
      if (failed > 0) return 'upstream_failed';
      if (skipped > 0) return 'skip';
      return all ? 'run' : 'wait';
    case 'all_failed':
      if (ok > 0 || skipped > 0) return 'skip';
      return all ? 'run' : 'wait';
    case 'all_done':
      return all ? 'run' : 'wait';
    case 'one_success':
      if (ok > 0) return 'run';
      if (!all) return 'wait';
      return failed > 0 ? 'upstream_failed' : 'skip';
    case 'one_failed':
      if (failed > 0) return 'run';
      return all ? 'skip' : 'wait';
    case 'none_failed':
      if (failed > 0) return 'upstream_failed';
      return all ? 'run' : 'wait';
    case 'none_skipped':
      if (skipped > 0) return 'skip';
      return all ? 'run' : 'wait';
  }
}

/** The names a step's expressions see. */
export function exprContext(params: Record<string, unknown>, steps: ReadonlyMap<string, StepStatus>, run: { id: string; fire_time: string | null }): Record<string, unknown> {
  const s: Record<string, unknown> = {};
  for (const [id, st] of steps) s[id] = { state: st.state, outputs: st.outputs ?? null };
  return { params, steps: s, run };
}

/**
 * Decisions for every PENDING step that can be decided now. Skips cascade: call again after
 * applying skips until nothing new is decided.
 */
export function planRun(def: WorkflowDef, steps: ReadonlyMap<string, StepStatus>, ctx: Record<string, unknown>): Decision[] {
  const out: Decision[] = [];
  for (const step of def.steps) {
    const me = steps.get(step.step_id);
    if (!me || me.state !== 'PENDING') continue;
    const verdict = triggerVerdict(step.trigger_rule, step.depends_on.map((d) => steps.get(d)?.state ?? 'PENDING'));
    if (verdict === 'wait') continue;
    if (verdict === 'skip') {
      out.push({ step_id: step.step_id, action: 'skip', reason: `trigger rule ${step.trigger_rule} not met by upstream states` });
      continue;
    }
    if (verdict === 'upstream_failed') {
      out.push({ step_id: step.step_id, action: 'upstream_failed', reason: `an upstream step failed (trigger rule ${step.trigger_rule})` });
      continue;
    }
    if (step.when !== null) {
      let pass: boolean;
      try {
        pass = evalCondition(step.when, ctx);
      } catch (err) {
        out.push({ step_id: step.step_id, action: 'upstream_failed', reason: `when: ${(err as Error).message}` });
        continue;
      }
      if (!pass) {
        out.push({ step_id: step.step_id, action: 'skip', reason: `condition false: ${step.when}` });
        continue;
      }
    }
    if (step.map !== null) {
      const list = evalExpr(parseExpr(step.map), ctx);
      if (!Array.isArray(list)) {
        out.push({ step_id: step.step_id, action: 'upstream_failed', reason: `map: '${step.map}' is not a list (got ${list === null ? 'null' : typeof list})` });
        continue;
      }
      out.push({ step_id: step.step_id, action: 'run', items: list });
      continue;
    }
    out.push({ step_id: step.step_id, action: 'run', items: null });
  }
  return out;
}

/** A step's parameters with `{{ … }}` references rendered (`ctx` carries item/index for a mapped step). */
export function stepParameters(step: StepDef, ctx: Record<string, unknown>): Record<string, unknown> {
  return renderValue(step.parameters, ctx) as Record<string, unknown>;
}

/** The run's state from its steps': RUNNING until all are final; then FAILED if a leaf step failed. */
export function runState(def: WorkflowDef, steps: ReadonlyMap<string, StepStatus>): RunState {
  const states = def.steps.map((s) => steps.get(s.step_id)?.state ?? 'PENDING');
  if (!states.every((s) => FINAL_STEP_STATES.has(s))) return 'RUNNING';
  const hasDownstream = new Set(def.steps.flatMap((s) => s.depends_on));
  const leaves = def.steps.filter((s) => !hasDownstream.has(s.step_id));
  return leaves.some((s) => FAILED_LIKE.has(steps.get(s.step_id)!.state)) ? 'FAILED' : 'SUCCEEDED';
}

/** The JSON a finished job contributes as step outputs: a handler's object result, or lines `::output {…}` of a command. */
export function outputsOf(result: unknown, stdout: string | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (result !== null && result !== undefined) {
    if (typeof result === 'object' && !Array.isArray(result)) Object.assign(out, result);
    else out.value = result;
  }
  if (stdout) {
    for (const line of stdout.split('\n')) {
      const m = /^::output\s+(.*)$/.exec(line.trim());
      if (!m) continue;
      try {
        const v = JSON.parse(m[1]!) as unknown;
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, v);
      } catch {
        /* not JSON: an ordinary log line */
      }
    }
  }
  return out;
}
