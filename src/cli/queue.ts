/** Queue commands: queue (status), reorder, dlq (list, requeue). */
import type { Command } from 'commander';
import { clip, fields, out, printJson, table, time } from './output.ts';
import { collectParam, positiveInteger } from './parse.ts';
import { globals, type Session } from './session.ts';

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
    .command('requeue')
    .summary('queue a dead-lettered job again')
    .argument('<id>', 'job id')
    .option('--param <key=value>', 'replace a parameter; the value is JSON when it parses (repeatable)', collectParam)
    .action(async (id: string, o: { param?: Record<string, unknown> }, cmd: Command) => {
      const job = await session.connect(cmd).requeueDead(id, o.param);
      if (globals(cmd).output === 'json') return printJson(job);
      out(`job ${id} ${job.status}`);
    });
}
