/**
 * `gantry simulate export`: the recorded job history as a simulator trace, and the cluster as its
 * YAML, for a what-if on real history ("what if we add 8 GPUs / raise tenant X's quota").
 * Attaches to the `simulate` command group when it exists (src/cli of the simulator), else creates it.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { out } from './output.ts';
import { globals, type Session } from './session.ts';

export function simulateExportCommand(program: Command, session: Session): void {
  const simulate = program.commands.find((c) => c.name() === 'simulate')
    ?? program.command('simulate').summary('scheduling simulator: what-if runs of the real policy on a trace');
  simulate
    .command('export')
    .summary('write the recorded job history as a trace (JSONL) and the cluster as YAML')
    .requiredOption('--out <file>', 'trace file to write (JSONL)')
    .option('--cluster-out <file>', 'also write the cluster (workers, tenants) as YAML')
    .option('--since <time>', 'only jobs created at or after (ISO time or epoch ms)')
    .option('--until <time>', 'only jobs created before (ISO time or epoch ms)')
    .action(async (o: { out: string; clusterOut?: string; since?: string; until?: string }, cmd: Command) => {
      const c = session.connect(cmd);
      const trace = await c.exportTrace({ since: o.since, until: o.until });
      writeFileSync(o.out, trace);
      const jobs = trace.split('\n').filter(Boolean).length;
      if (o.clusterOut) writeFileSync(o.clusterOut, await c.exportCluster());
      if (globals(cmd).output === 'json') return out(JSON.stringify({ trace: o.out, jobs, cluster: o.clusterOut ?? null }));
      out(`wrote ${jobs} jobs to ${o.out}${o.clusterOut ? ` and the cluster to ${o.clusterOut}` : ''}`);
    });
}
