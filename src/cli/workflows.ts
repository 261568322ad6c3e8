/**
 * Workflow and schedule commands: `gantry workflow create|run|status|list|cancel|rerun` and
 * `gantry schedule create|list|show|delete|backfill`.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseWorkflowFile } from '../workflows/definition.ts';
import { schedules, workflows, type RunView, type ScheduleRequest } from '../client/workflows.ts';
import type { GantryClient } from '../client/http.ts';
import { clip, fields, out, printJson, table, time } from './output.ts';
import { collectParam, positiveInteger } from './parse.ts';
import { CliError, EXIT, globals, type Session } from './session.ts';

function readDefinition(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.USAGE);
  }
  try {
    return parseWorkflowFile(text);
  } catch (err) {
    throw new CliError(`${file}: ${(err as Error).message}`, EXIT.USAGE);
  }
}

const short = (v: unknown) => (v === null || v === undefined ? '' : clip(JSON.stringify(v), 60));

function printRun(r: RunView): void {
  out(fields([
    ['run_id', r.run_id],
    ['workflow', `${r.workflow_name} v${r.version} (${r.workflow_id})`],
    ['status', r.status],
    ['parameters', JSON.stringify(r.parameters)],
    ['rerun_of', r.rerun_of],
    ['created', time(r.created_at)],
    ['finished', r.finished_at ? time(r.finished_at) : null],
  ]));
  if (!r.steps) return;
  out();
  out(table(
    ['STEP', 'STATUS', 'JOBS', 'OUTPUTS / ERROR'],
    r.steps.map((s) => [
      s.step_id, s.status,
      s.reused_from ? `reused from ${s.reused_from}` : s.map_total !== null ? `${s.jobs.length} (map)` : (s.jobs[0]?.job_id ?? '-'),
      s.error ? clip(s.error, 60) : short(s.outputs),
    ]),
  ));
}

async function waitRun(c: GantryClient, runId: string, session: Session, timeoutS: number): Promise<RunView> {
  const r = await workflows(c).waitForRun(runId, { timeout_ms: timeoutS * 1000, interval_ms: 100 });
  if (r.status !== 'SUCCEEDED') session.exitCode = EXIT.FAILURE;
  return r;
}

export function workflowCommands(program: Command, session: Session): void {
  const wf = program.command('workflow').summary('workflows: DAGs of steps with trigger rules, conditions, outputs and fan-out');

  wf.command('create')
    .summary('create a workflow (or a new version) from a YAML or JSON file')
    .requiredOption('-f, --file <path>', 'workflow definition (YAML or JSON)')
    .action(async (o: { file: string }, cmd: Command) => {
      const res = await workflows(session.connect(cmd)).create(readDefinition(o.file) as never);
      if (globals(cmd).output === 'json') return printJson(res);
      out(`${res.message}: ${res.workflow_name} v${res.version} (${res.workflow_id}), steps ${res.steps.join(', ')}`);
    });

  wf.command('list')
    .summary('workflows (latest version of each)')
    .action(async (_o: unknown, cmd: Command) => {
      const res = await workflows(session.connect(cmd)).list();
      if (globals(cmd).output === 'json') return printJson(res);
      if (res.workflows.length === 0) return out('no workflows');
      out(table(['NAME', 'VERSION', 'STEPS', 'WORKFLOW_ID', 'DESCRIPTION'], res.workflows.map((w) => [
        w.workflow_name, String(w.version), String(w.steps.length), w.workflow_id, clip(w.description ?? '', 50),
      ])));
    });

  wf.command('run')
    .summary('start a run of a workflow (by name, name@version or id)')
    .argument('<workflow>', 'workflow name, name@version or id')
    .option('--param <key=value>', 'a run parameter; the value is JSON when it parses (repeatable)', collectParam)
    .option('--wait', 'wait for the run to end; exit 1 unless it SUCCEEDED')
    .option('--timeout <seconds>', 'with --wait: give up after this long (default 3600)', positiveInteger)
    .action(async (ref: string, o: { param?: Record<string, unknown>; wait?: boolean; timeout?: number }, cmd: Command) => {
      const c = session.connect(cmd);
      let r = await workflows(c).run(ref, o.param ?? {});
      if (o.wait) r = await waitRun(c, r.run_id, session, o.timeout ?? 3600);
      if (globals(cmd).output === 'json') return printJson(r);
      if (!o.wait) return out(`run ${r.run_id} started: ${r.workflow_name} v${r.version}`);
      printRun(r);
    });

  wf.command('status')
    .summary('a run with each step\'s state, jobs and outputs')
    .argument('<run_id>', 'workflow run id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const r = await workflows(session.connect(cmd)).getRun(id);
      if (globals(cmd).output === 'json') return printJson(r);
      printRun(r);
    });

  wf.command('runs')
    .summary('runs of a workflow, newest first')
    .argument('<workflow>', 'workflow name or id')
    .option('--limit <n>', 'how many (default 50)', positiveInteger)
    .action(async (ref: string, o: { limit?: number }, cmd: Command) => {
      const res = await workflows(session.connect(cmd)).runs(ref, o.limit ?? 50);
      if (globals(cmd).output === 'json') return printJson(res);
      if (res.runs.length === 0) return out(`no runs of ${res.workflow_name}`);
      out(table(['RUN_ID', 'VERSION', 'STATUS', 'CREATED', 'DURATION_MS', 'TRIGGER'], res.runs.map((r) => [
        r.run_id, String(r.version), r.status, time(r.created_at), r.duration_ms === null ? '-' : String(r.duration_ms), String(r.trigger.kind ?? ''),
      ])));
    });

  wf.command('cancel')
    .summary('cancel a run (running steps are stopped)')
    .argument('<run_id>', 'workflow run id')
    .option('--reason <text>', 'recorded on the cancelled jobs')
    .action(async (id: string, o: { reason?: string }, cmd: Command) => {
      const r = await workflows(session.connect(cmd)).cancelRun(id, o.reason);
      if (globals(cmd).output === 'json') return printJson(r);
      out(`run ${id} ${r.status}`);
    });

  wf.command('rerun')
    .summary('re-run a failed run from its failed steps, keeping the successful steps\' outputs')
    .argument('<run_id>', 'a FAILED or CANCELLED run')
    .option('--param <key=value>', 'edit a run parameter (repeatable)', collectParam)
    .option('--wait', 'wait for the new run to end; exit 1 unless it SUCCEEDED')
    .option('--timeout <seconds>', 'with --wait: give up after this long (default 3600)', positiveInteger)
    .action(async (id: string, o: { param?: Record<string, unknown>; wait?: boolean; timeout?: number }, cmd: Command) => {
      const c = session.connect(cmd);
      let r = await workflows(c).rerun(id, o.param ?? {});
      const reused = r.reused_steps ?? [];
      if (o.wait) r = await waitRun(c, r.run_id, session, o.timeout ?? 3600);
      if (globals(cmd).output === 'json') return printJson({ ...r, reused_steps: reused });
      out(`run ${r.run_id} re-runs ${id}; reused: ${reused.length ? reused.join(', ') : 'none'}`);
      if (o.wait) printRun(r);
    });

  const sch = program.command('schedule').summary('cron schedules for jobs and workflows');
  sch.command('create')
    .summary('create a cron schedule that starts a workflow run or a job')
    .requiredOption('--name <name>', 'unique schedule name')
    .requiredOption('--cron <expr>', "cron expression, e.g. '0 2 * * *' (6 fields = with seconds)")
    .option('--timezone <tz>', 'IANA time zone (default UTC)')
    .option('--workflow <ref>', 'start a run of this workflow')
    .option('--param <key=value>', 'a run parameter for --workflow (repeatable)', collectParam)
    .option('--job <json>', 'start this job (a POST /jobs body as JSON)')
    .option('--catchup <policy>', 'missed fire times at start: none | last | all (default none)')
    .option('--catchup-window <seconds>', 'how far back catch-up looks (default 86400)', positiveInteger)
    .option('--overlap <policy>', 'while the previous is running: skip | buffer_one | allow | cancel_other (default skip)')
    .option('--disabled', 'create it paused')
    .action(async (o: {
      name: string; cron: string; timezone?: string; workflow?: string; param?: Record<string, unknown>; job?: string;
      catchup?: string; catchupWindow?: number; overlap?: string; disabled?: boolean;
    }, cmd: Command) => {
      let job: Record<string, unknown> | undefined;
      if (o.job !== undefined) {
        try {
          job = JSON.parse(o.job) as Record<string, unknown>;
        } catch {
          throw new CliError('--job must be a JSON object (a job request)', EXIT.USAGE);
        }
      }
      const body: ScheduleRequest = {
        name: o.name, cron: o.cron,
        ...(o.timezone ? { timezone: o.timezone } : {}),
        ...(o.workflow ? { workflow: { workflow: o.workflow, parameters: o.param ?? {} } } : {}),
        ...(job ? { job } : {}),
        ...(o.catchup ? { catchup: o.catchup as never } : {}),
        ...(o.catchupWindow ? { catchup_window: o.catchupWindow } : {}),
        ...(o.overlap ? { overlap: o.overlap as never } : {}),
        ...(o.disabled ? { enabled: false } : {}),
      };
      const s = await schedules(session.connect(cmd)).create(body);
      if (globals(cmd).output === 'json') return printJson(s);
      out(`schedule ${String(s.name)} (${s.schedule_id}) created; next fire ${time(s.next_fire_time as string | null)}`);
    });

  sch.command('list')
    .summary('schedules')
    .action(async (_o: unknown, cmd: Command) => {
      const res = await schedules(session.connect(cmd)).list();
      if (globals(cmd).output === 'json') return printJson(res);
      if (res.schedules.length === 0) return out('no schedules');
      out(table(['NAME', 'CRON', 'TIMEZONE', 'TARGET', 'OVERLAP', 'CATCHUP', 'ENABLED', 'NEXT_FIRE'], res.schedules.map((s) => {
        const t = s.target as { kind: string; workflow?: string };
        return [s.name, String(s.cron), String(s.timezone), t.kind === 'workflow' ? `workflow ${t.workflow}` : 'job', String(s.overlap), String(s.catchup), String(s.enabled), time(s.next_fire_time as string | null)];
      })));
    });

  sch.command('show')
    .summary('a schedule and its recent fires')
    .argument('<schedule>', 'name or id')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const s = await schedules(session.connect(cmd)).get(ref);
      if (globals(cmd).output === 'json') return printJson(s);
      out(fields([['name', String(s.name)], ['cron', `${String(s.cron)} (${String(s.timezone)})`], ['next_fire', time(s.next_fire_time as string | null)], ['overlap', String(s.overlap)], ['catchup', String(s.catchup)]]));
      if (s.fires.length) {
        out();
        out(table(['FIRE_TIME', 'KIND', 'OUTCOME', 'TARGET'], s.fires.map((f) => [time(f.fire_time), f.kind, f.outcome, f.target_id ?? '-'])));
      }
    });

  sch.command('delete')
    .summary('delete a schedule')
    .argument('<schedule>', 'name or id')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const r = await schedules(session.connect(cmd)).delete(ref);
      if (globals(cmd).output === 'json') return printJson(r);
      out(`schedule ${ref} deleted`);
    });

  sch.command('backfill')
    .summary('fire a schedule for every cron time in a past interval (each at most once)')
    .argument('<schedule>', 'name or id')
    .requiredOption('--from <time>', 'ISO 8601 start (inclusive)')
    .requiredOption('--to <time>', 'ISO 8601 end (inclusive, not in the future)')
    .action(async (ref: string, o: { from: string; to: string }, cmd: Command) => {
      const r = await schedules(session.connect(cmd)).backfill(ref, o.from, o.to);
      if (globals(cmd).output === 'json') return printJson(r);
      out(r.message);
      if (r.fires.length) out(table(['FIRE_TIME', 'OUTCOME', 'TARGET'], r.fires.map((f) => [time(f.fire_time), f.outcome, f.target_id ?? '-'])));
    });
}
