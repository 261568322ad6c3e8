/** `gantry workers`: the registered workers and what they hold; `workers drain ID`. */
import type { Command } from 'commander';
import { num, out, printJson, table, time } from './output.ts';
import { globals, type Session } from './session.ts';

export function workerCommands(program: Command, session: Session): void {
  const workers = program.command('workers').summary('list workers, or drain one');
  workers
    .command('list', { isDefault: true })
    .summary('workers with capacity and usage (the default)')
    .action(async (_o: unknown, cmd: Command) => {
      const res = await session.connect(cmd).workers();
      if (globals(cmd).output === 'json') return printJson(res);
      if (res.workers.length === 0) return out('no workers');
      out(table(
        ['WORKER_ID', 'NAME', 'KIND', 'STATE', 'CPU', 'MEM_GB', 'GPUS', 'SLOTS', 'LAST_HEARTBEAT'],
        res.workers.map((w) => [
          w.worker_id, w.name, w.kind, w.state,
          `${num(w.used.cpu_cores)}/${num(w.capacity.cpu_cores)}`,
          `${num(w.used.memory_gb)}/${num(w.capacity.memory_gb)}`,
          `${w.used.gpu_count}/${w.capacity.gpu_count}`,
          `${w.used.slots}/${w.capacity.slots}`,
          time(w.last_heartbeat),
        ]),
      ));
    });
  workers
    .command('drain')
    .summary('stop giving a worker new jobs; running ones finish')
    .argument('<id>', 'worker id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const res = await session.connect(cmd).drainWorker(id);
      if (globals(cmd).output === 'json') return printJson(res);
      out(`worker ${res.worker_id} ${res.state}`);
    });
}
