/** Queue commands: queue (status), reorder, dlq (list, requeue). */
import type { Command } from 'commander';
import { clip, fields, out, printJson, table, time } from './output.ts';
import { collectPair, collectParam, positiveInteger } from './parse.ts';
import { CliError, EXIT, globals, type Session } from './session.ts';

export function queueCommands(program: Command, session: Session): void {
  program
    .command('queue')
    .summary('queue length, running jobs and waits per priority')
    .action(async (_o: unknown, cmd: Command) => {
      const q = await session.connect(cmd).queueStatus();
      if (globals(cmd).output === 'json') return printJson(q);
      out(fields([
        ['queue_length', String(q.queue_length)],
        ['pending', String(q.pending_jobs)],
        ['retrying', String(q.retrying_jobs)],
        ['running', String(q.running_jobs)],
        ['paused', String(q.paused_jobs)],
        ['as_of', q.as_of],
      ]));
      out();
      out(table(
        ['PRIORITY', 'LENGTH', 'AVG_WAIT', 'OLDEST_WAIT_S'],
        Object.entries(q.queues).map(([p, s]) => [p, String(s.length), s.avg_wait_time, String(s.oldest_wait_seconds)]),
      ));
    });

  program
    .command('reorder')
    .summary('move a queued job to a position within its priority class')
    .argument('<id>', 'job id')
    .argument('<position>', 'new position, 1 = next to run', positiveInteger)
    .option('--reason <text>', 'recorded in the job\'s events')
    .action(async (id: string, position: number, o: { reason?: string }, cmd: Command) => {
      const job = await session.connect(cmd).reorder(id, position, o.reason);
      if (globals(cmd).output === 'json') return printJson(job);
      out(`job ${id} is now at position ${job.queue_position} of the ${job.priority} queue`);
    });

  const dlq = program.command('dlq').summary('dead-letter queue: jobs that failed for good');
  dlq
    .command('list', { isDefault: true })
    .summary('list dead-lettered jobs (the default)')
    .option('--limit <n>', 'jobs per page (default 50)', positiveInteger)
    .option('--cursor <cursor>', 'the next page, from a previous list')
    .action(async (o: { limit?: number; cursor?: string }, cmd: Command) => {
      const page = await session.connect(cmd).deadLetter(o);
      if (globals(cmd).output === 'json') return printJson(page);
      if (page.jobs.length === 0) return out('dead-letter queue is empty');
      out(table(
        ['JOB_ID', 'NAME', 'STATUS', 'TENANT', 'ATTEMPTS', 'FINISHED', 'ERROR'],
        page.jobs.map((j) => [j.job_id, clip(j.name, 30), j.status, j.tenant, String(j.attempt_count), time(j.finished_at), clip(j.error ?? '', 60)]),
      ));
      if (page.next_cursor) out(`more: gantry dlq --cursor ${page.next_cursor}`);
    });
  dlq
    .command('show')
    .summary('one dead-lettered job with every attempt and event')
    .argument('<id>', 'job id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const j = await session.connect(cmd).dlqJob(id);
      if (globals(cmd).output === 'json') return printJson(j);
      out(fields([
        ['job_id', j.job_id], ['name', j.name], ['status', j.status], ['dead_lettered_at', time(j.dead_lettered_at)], ['error', j.error],
      ]));
      out();
      out(table(
        ['ATTEMPT', 'OUTCOME', 'EXIT', 'STARTED', 'ENDED', 'WORKER', 'ERROR'],
        (j.attempts ?? []).map((a) => [String(a.number), a.outcome, a.exit_code === null ? '-' : String(a.exit_code), time(a.started_at), time(a.ended_at), a.worker_id, clip(a.error ?? '', 60)]),
      ));
    });
  dlq
    .command('requeue')
    .summary('queue dead-lettered jobs again (by id, or every one matching --type/--tenant/--error)')
    .argument('[ids...]', 'job ids')
    .option('--type <type>', 'every dead-lettered job of this type')
    .option('--tenant <tenant>', 'every dead-lettered job of this tenant')
    .option('--error <text>', 'every dead-lettered job whose error contains this text')
    .option('--param <key=value>', 'set a parameter on each job; the value is JSON when it parses (repeatable)', collectParam)
    .option('--env <KEY=VALUE>', 'set an environment variable on each job (repeatable)', collectPair)
    .action(async (ids: string[], o: { type?: string; tenant?: string; error?: string; param?: Record<string, unknown>; env?: Record<string, string> }, cmd: Command) => {
      const filter = o.type !== undefined || o.tenant !== undefined || o.error !== undefined ? { type: o.type, tenant: o.tenant, error_contains: o.error } : undefined;
      if ((ids.length > 0) === (filter !== undefined)) throw new CliError('give job ids, or --type/--tenant/--error to pick jobs (not both)', EXIT.USAGE);
      const res = await session.connect(cmd).requeueDeadLetters({ job_ids: ids.length > 0 ? ids : undefined, filter, parameters: o.param, env: o.env });
      if (globals(cmd).output === 'json') return printJson(res);
      out(`${res.requeued} job${res.requeued === 1 ? '' : 's'} requeued${res.job_ids.length ? ': ' + res.job_ids.join(' ') : ''}`);
    });
}
