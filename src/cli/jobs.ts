/** Job commands: submit, status, list, logs, cancel, pause, resume, retry, priority. */
import { readFileSync } from 'node:fs';
import { Argument, type Command } from 'commander';
import {
  FINAL_STATUSES, GantryApiError, type GantryClient, type JobEventView, type JobRequest, type JobView, type Priority, type SubmitResponse,
} from '../client/http.ts';
import { clip, estimate, fields, num, out, printJson, shellQuote, table, time, type OutputFormat } from './output.ts';
import { collectPair, collectParam, integer, number, positiveInteger } from './parse.ts';
import { CliError, EXIT, globals, type Session } from './session.ts';

const PRIORITY_LEVELS = ['emergency', 'critical', 'high', 'normal', 'low', 'urgent'] as const;
const WAIT_POLL_MS = 250;

/** Which submit flag sets which API field, so a validation error can name the flag the user typed. */
const FIELD_FLAGS: Readonly<Record<string, string>> = {
  name: '--name',
  type: '--type',
  tenant: '--tenant',
  priority: '--priority',
  'resources.cpu_cores': '--cpu',
  'resources.memory_gb': '--memory-gb',
  'resources.gpu_count': '--gpus',
  'resources.storage_gb': '--storage-gb',
  timeout: '--timeout',
  expected_duration: '--expected-duration',
  grace_period: '--grace-period',
  nodes: '--nodes',
  'retry_policy.max_attempts': '--max-attempts',
  'retry_policy.retry_delay': '--retry-delay',
  'retry_policy.name': '--retry-policy',
  retry_policy: '--retry-policy',
  'retry_policy.non_retryable_exit_code': '--non-retryable-exit-code',
  working_dir: '--workdir',
  handler: '--handler',
  idempotency_key: '--idempotency-key',
};

interface SubmitOptions {
  file?: string;
  name?: string;
  type?: string;
  tenant?: string;
  priority?: string;
  cpu?: number;
  memoryGb?: number;
  gpus?: number;
  storageGb?: number;
  timeout?: number;
  expectedDuration?: number;
  gracePeriod?: number;
  notPreemptible?: boolean;
  nodes?: number;
  maxAttempts?: number;
  retryDelay?: number;
  retryPolicy?: string;
  nonRetryableExitCode?: number;
  env?: Record<string, string>;
  label?: Record<string, string>;
  param?: Record<string, unknown>;
  workdir?: string;
  handler?: string;
  template?: string;
  idempotencyKey?: string;
  wait?: boolean;
}

function readJobFile(path: string): JobRequest {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read job file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.USAGE);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new CliError(`job file ${path} is not valid JSON: ${(err as Error).message}`, EXIT.USAGE);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CliError(`job file ${path} must hold one JSON object (a job request)`, EXIT.USAGE);
  }
  return body as JobRequest;
}

/** Drops keys whose value is undefined, so `{...fromFile, ...fromFlags}` keeps what flags leave unset. */
function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The request body: the -f file if any, with every given flag on top. */
export function buildJobRequest(command: readonly string[], o: SubmitOptions): JobRequest {
  const body: JobRequest = o.file ? readJobFile(o.file) : {};
  Object.assign(body, defined({
    name: o.name,
    type: o.type,
    tenant: o.tenant,
    priority: o.priority as Priority | undefined,
    timeout: o.timeout,
    expected_duration: o.expectedDuration,
    grace_period: o.gracePeriod,
    preemptible: o.notPreemptible ? false : undefined,
    nodes: o.nodes,
    working_dir: o.workdir,
    idempotency_key: o.idempotencyKey,
  }));
  const resources = defined({ cpu_cores: o.cpu, memory_gb: o.memoryGb, gpu_count: o.gpus, storage_gb: o.storageGb });
  if (Object.keys(resources).length) body.resources = { ...body.resources, ...resources };
  const retry = defined({ name: o.retryPolicy, max_attempts: o.maxAttempts, retry_delay: o.retryDelay, non_retryable_exit_code: o.nonRetryableExitCode });
  if (Object.keys(retry).length) {
    const fromFile = typeof body.retry_policy === 'string' ? { name: body.retry_policy } : body.retry_policy;
    body.retry_policy = { ...fromFile, ...retry };
  }
  if (o.env) body.env = { ...body.env, ...o.env };
  if (o.label) body.labels = { ...body.labels, ...o.label };
  if (o.param) body.parameters = { ...body.parameters, ...o.param };
  // What to run given on the command line replaces what the file says, whichever kind it is.
  if (command.length) {
    body.command = [...command];
    delete body.handler;
  } else if (o.handler) {
    body.handler = o.handler;
    delete body.command;
  } else if (o.template) {
    body.template = o.template;
    delete body.command;
    delete body.handler;
  }
  if (!body.command && !body.handler && !body.template) {
    throw new CliError('nothing to run: give a command after `--` (gantry submit -- python train.py), --handler NAME, --template NAME, or -f job.json', EXIT.USAGE);
  }
  return body;
}

/** 0 for COMPLETED, the process's exit code when it FAILED with one, 1 for anything else. */
export function jobExitCode(job: JobView): number {
  if (job.status === 'COMPLETED') return EXIT.OK;
  const code = job.exit_code;
  if (job.status === 'FAILED' && code !== null && code > 0 && code < 256) return code;
  return EXIT.FAILURE;
}

function clock(iso: string): string {
  return new Date(iso).toTimeString().slice(0, 8);
}

function eventLine(e: JobEventView): string {
  return `${clock(e.at)}  ${e.to.padEnd(9)}  ${e.reason}`;
}

/**
 * Polls until the job is final, handing each state change to `onEvent` once. Reading the job
 * before its events means the events always include the final transition.
 */
/**
 * What every submitting command prints: the submit's answer (these rows, or `json` in JSON
 * mode); with `wait`, the job's state changes until it ends, then its outcome, and the job's
 * exit code becomes the command's.
 */
export async function showSubmitted(
  session: Session, client: GantryClient, output: OutputFormat, wait: boolean | undefined,
  res: SubmitResponse, rows: [string, string][], json: object = res,
): Promise<void> {
  if (output === 'json' && !wait) return printJson(json);
  if (output !== 'json') out(fields(rows));
  if (!wait) return;
  // In JSON mode stdout carries only the final job, so progress goes to stderr.
  const progress = output === 'json' ? (l: string) => process.stderr.write(l + '\n') : out;
  const job = await watch(client, res.job_id, progress);
  if (output === 'json') printJson(job);
  else out(outcome(job));
  session.exitCode = jobExitCode(job);
}

export async function watch(client: GantryClient, id: string, onEvent: (line: string) => void): Promise<JobView> {
  let shown = 0;
  for (;;) {
    const job = await client.getJob(id);
    const { events } = await client.events(id);
    for (const e of events.slice(shown)) if (e.from !== e.to) onEvent(eventLine(e));
    shown = events.length;
    if (FINAL_STATUSES.has(job.status)) return job;
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
}

export function outcome(job: JobView): string {
  const parts = [`job ${job.job_id} ${job.status}`];
  if (job.exit_code !== null) parts.push(`exit code ${job.exit_code}`);
  return parts.join(', ') + (job.error && job.status !== 'COMPLETED' ? `: ${job.error}` : '');
}

// JobView reuses the request's resource type, whose fields are optional; the server always fills them.
function resources(r: JobView['resources']): string {
  const storage = r.storage_gb ? `, storage ${num(r.storage_gb)} GB` : '';
  return `cpu ${num(r.cpu_cores ?? 0)}, memory ${num(r.memory_gb ?? 0)} GB, gpus ${r.gpu_count ?? 0}${storage}`;
}

export function printJob(j: JobView): void {
  const queued = j.status === 'QUEUED';
  out(fields([
    ['job_id', j.job_id],
    ['name', j.name],
    ['status', j.status + (j.cancel_requested && !FINAL_STATUSES.has(j.status) ? ' (cancel requested)' : '') + (j.dead_lettered ? ' (dead-lettered)' : '')],
    ['priority', j.priority],
    ['tenant', j.tenant],
    ['type', j.type],
    [j.kind === 'command' ? 'command' : 'handler', j.kind === 'command' ? shellQuote(j.command ?? []) : (j.handler ?? '')],
    ['resources', resources(j.resources)],
    ['worker', j.worker_id ? j.worker_id + (j.gpu_indices.length ? ` (gpus ${j.gpu_indices.join(',')})` : '') : null],
    ['gang', j.gang ? `${j.gang.size} nodes: ${j.gang.members.map((m) => `${m.rank}=${m.worker_id}${m.gpu_indices.length ? ` (gpus ${m.gpu_indices.join(',')})` : ''} ${m.state}`).join(', ')}` : null],
    ['attempts', `${j.attempt_count} of ${j.retry_policy.max_attempts ?? '?'}`],
    ['queue_position', queued && j.queue_position !== undefined ? String(j.queue_position) : null],
    ['estimated_start', queued ? estimate(j.estimated_start_time) : null],
    ['pending_reason', queued || j.status === 'SUBMITTED' ? (j.pending_reason ?? null) : null],
    ['template', j.template ? `${j.template} v${j.template_version}` : null],
    ['steps', j.steps?.length ? j.steps.map((s) => s.name).join(' → ') : null],
    ['depends_on', j.depends_on?.length ? `${j.depends_on.map((d) => `${d.id} (${d.state})`).join(', ')} [${j.dependency_type}]` : null],
    ['run_after', j.run_after ? time(j.run_after) : null],
    ['progress', j.progress !== null ? `${Math.round(j.progress * 100)}%` : null],
    ['exit_code', j.exit_code !== null ? String(j.exit_code) : null],
    ['error', j.error],
    ['created', time(j.created_at)],
    ['queued', j.queued_at ? time(j.queued_at) : null],
    ['started', j.started_at ? time(j.started_at) : null],
    ['finished', j.finished_at ? time(j.finished_at) : null],
  ]));
  if (j.attempts?.length) {
    out();
    out(table(
      ['ATTEMPT', 'WORKER', 'OUTCOME', 'STARTED', 'ENDED', 'EXIT', 'ERROR'],
      j.attempts.map((a) => [
        String(a.number), a.worker_id, a.outcome, time(a.started_at), time(a.ended_at),
        a.exit_code === null ? '-' : String(a.exit_code), a.error ? clip(a.error, 60) : '',
      ]),
    ));
  }
}

function jobRows(jobs: readonly JobView[]): string[][] {
  return jobs.map((j) => [j.job_id, clip(j.name, 30), j.status, j.priority, j.tenant, j.type, String(j.attempt_count), time(j.created_at)]);
}
const JOB_HEADERS = ['JOB_ID', 'NAME', 'STATUS', 'PRIORITY', 'TENANT', 'TYPE', 'ATTEMPTS', 'CREATED'] as const;

export function jobCommands(program: Command, session: Session): void {
  program
    .command('submit')
    .summary('submit a job')
    .description('Submit a job: the command after `--`, a --handler, or a JSON request body with -f (flags override the file).')
    .argument('[command...]', 'the command to run; put it after -- so its own flags are not read as gantry flags')
    .option('-f, --file <path>', 'job request JSON (POST /api/v1/jobs body)')
    .option('--name <name>', 'job name (default: the program name)')
    .option('--type <type>', 'job type, for history-based estimates')
    .option('--tenant <tenant>', 'tenant (default: default)')
    .option('--priority <level>', `priority: ${PRIORITY_LEVELS.join(', ')}`)
    .option('--cpu <cores>', 'CPU cores', number)
    .option('--memory-gb <gb>', 'memory in GB', number)
    .option('--gpus <n>', 'GPUs', integer)
    .option('--storage-gb <gb>', 'scratch storage in GB', number)
    .option('--timeout <seconds>', 'kill the job after this long', number)
    .option('--expected-duration <seconds>', 'your run-time estimate', number)
    .option('--retry-policy <name>', 'a named retry policy: network_error, resource_exhausted, temporary_failure, critical_job')
    .option('--non-retryable-exit-code <code>', 'this exit code fails the job for good, without retries', integer)
    .option('--grace-period <seconds>', 'time between SIGTERM and SIGKILL when stopped (e.g. to checkpoint when preempted)', number)
    .option('--not-preemptible', 'only emergency work may preempt this job')
    .option('--nodes <n>', 'run as a gang on n workers (all or nothing, started together; resources are per node)', integer)
    .option('--max-attempts <n>', 'runs allowed, including the first', integer)
    .option('--retry-delay <seconds>', 'wait before the first retry', number)
    .option('--env <KEY=VALUE>', 'environment variable (repeatable)', collectPair)
    .option('--label <key=value>', 'label (repeatable)', collectPair)
    .option('--param <key=value>', 'parameter; the value is JSON when it parses (repeatable)', collectParam)
    .option('--workdir <dir>', 'working directory on the worker')
    .option('--handler <name>', 'run an SDK handler instead of a command')
    .option('--template <name>', 'run a job template (its parameters with --param k=v)')
    .option('--idempotency-key <key>', 'submitting twice with one key creates one job')
    .option('--wait', 'show state changes until the job ends; exit with its exit code')
    .action(async (command: string[], o: SubmitOptions, cmd: Command) => {
      const { output } = globals(cmd);
      const body = buildJobRequest(command, o);
      const client = session.connect(cmd);
      let res;
      try {
        res = await client.submit(body);
      } catch (err) {
        const field = err instanceof GantryApiError ? err.field : undefined;
        const flag = field ? (FIELD_FLAGS[field] ?? (field.startsWith('parameters.') ? `--param ${field.slice('parameters.'.length)}=…` : undefined)) : undefined;
        if (flag && err instanceof GantryApiError) throw new CliError(`${err.code} ${err.message} (${flag})`, EXIT.USAGE);
        throw err;
      }
      await showSubmitted(session, client, output, o.wait, res, [
        ['job_id', res.job_id],
        ['status', res.status],
        ['queue_position', res.queue_position === null ? '-' : String(res.queue_position)],
        ['estimated_start', estimate(res.estimated_start_time)],
      ]);
    });

  program
    .command('status')
    .summary('show one job')
    .argument('[id]', 'job id')
    .option('--execution-id <id>', 'the job id (as the create-* commands print it)')
    .action(async (arg: string | undefined, o: { executionId?: string }, cmd: Command) => {
      const id = arg ?? o.executionId;
      if (!id) throw new CliError('which job? gantry status JOB_ID (or --execution-id JOB_ID)', EXIT.USAGE);
      const job = await session.connect(cmd).getJob(id);
      if (globals(cmd).output === 'json') return printJson(job);
      printJob(job);
    });

  program
    .command('list')
    .summary('list jobs, newest first')
    .option('--status <status>', 'only jobs in this state')
    .option('--tenant <tenant>', 'only this tenant')
    .option('--type <type>', 'only this type')
    .option('--priority <level>', 'only this priority')
    .option('--limit <n>', 'jobs per page (default 50)', positiveInteger)
    .option('--cursor <cursor>', 'the next page, from a previous list')
    .action(async (o: { status?: string; tenant?: string; type?: string; priority?: string; limit?: number; cursor?: string }, cmd: Command) => {
      const page = await session.connect(cmd).listJobs(o);
      if (globals(cmd).output === 'json') return printJson(page);
      if (page.jobs.length === 0) return out('no jobs');
      out(table(JOB_HEADERS, jobRows(page.jobs)));
      if (page.next_cursor) out(`more: gantry list --cursor ${page.next_cursor}`);
    });

  program
    .command('logs')
    .summary('print a job\'s output')
    .argument('<id>', 'job id')
    .option('-f, --follow', 'keep printing until the job ends')
    .action(async (id: string, o: { follow?: boolean }, cmd: Command) => {
      const client = session.connect(cmd);
      const json = globals(cmd).output === 'json';
      const write = (stream: 'stdout' | 'stderr', data: string) => (stream === 'stderr' ? process.stderr : process.stdout).write(data);
      if (!o.follow) {
        // One response holds up to 10 000 chunks; page until a short one.
        const first = await client.logs(id);
        const all = { ...first, logs: [...first.logs] };
        let page = first;
        while (page.logs.length >= 10_000) {
          page = await client.logs(id, page.next_after);
          all.logs.push(...page.logs);
          all.next_after = page.next_after;
        }
        if (json) return printJson(all);
        for (const c of all.logs) write(c.stream, c.data);
        return;
      }
      for await (const item of client.followLogs(id)) {
        if (json) out(JSON.stringify(item));
        if ('end' in item) return;
        if (!json) write(item.stream, item.data);
      }
      throw new CliError(`the log stream of job ${id} ended before the job did (server stopped?)`);
    });

  program
    .command('cancel')
    .summary('cancel a job (stops it if running)')
    .argument('<id>', 'job id')
    .option('--reason <text>', 'recorded in the job\'s events')
    .option('--no-wait', 'return once the cancel is requested')
    .action(async (id: string, o: { reason?: string; wait: boolean }, cmd: Command) => {
      const client = session.connect(cmd);
      const json = globals(cmd).output === 'json';
      const res = await client.cancel(id, o.reason);
      if (!o.wait || FINAL_STATUSES.has(res.status)) {
        if (json) return printJson(res);
        return out(`job ${id} ${res.status}: ${res.message}`);
      }
      const job = await client.waitFor(id, { interval_ms: WAIT_POLL_MS });
      if (json) return printJson(job);
      out(`job ${id} ${job.status}`);
    });

  for (const action of ['pause', 'resume'] as const) {
    program
      .command(action)
      .summary(action === 'pause' ? 'pause a running job (SIGSTOP)' : 'resume a paused job (SIGCONT)')
      .argument('<id>', 'job id')
      .action(async (id: string, _o: unknown, cmd: Command) => {
        const client = session.connect(cmd);
        const res = action === 'pause' ? await client.pause(id) : await client.resume(id);
        if (globals(cmd).output === 'json') return printJson(res);
        out(`job ${id} ${res.status}: ${action} requested`);
      });
  }

  program
    .command('retry')
    .summary('run a FAILED, TIMEOUT or CANCELLED job again')
    .argument('<id>', 'job id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const job = await session.connect(cmd).retry(id);
      if (globals(cmd).output === 'json') return printJson(job);
      out(`job ${id} ${job.status}`);
    });

  program
    .command('priority')
    .summary('change a job\'s priority')
    .argument('<id>', 'job id')
    .addArgument(new Argument('<level>', 'new priority').choices(PRIORITY_LEVELS))
    .option('--reason <text>', 'recorded in the job\'s events')
    .action(async (id: string, level: Priority, o: { reason?: string }, cmd: Command) => {
      const job = await session.connect(cmd).setPriority(id, level, o.reason);
      if (globals(cmd).output === 'json') return printJson(job);
      out(`job ${id} priority ${job.priority} (${job.status})`);
    });
}
