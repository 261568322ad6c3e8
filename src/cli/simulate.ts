/**
 * `gantry simulate`: replays a trace on a simulated cluster under one or more scheduling policies
 * (the real policy code, a virtual clock, no server) and compares them; `simulate generate`
 * writes a seeded synthetic trace and its cluster. Runs locally: no server or token needed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { POLICY_NAMES } from '../scheduler/policy/policies.ts';
import { DEFAULT_GPU, DEFAULT_KUEUE, generateGpu, generateKueue } from '../sim/generate.ts';
import { htmlReport, textReport } from '../sim/report.ts';
import { applyWhatIf, parsePolicies, parseQuotaArg, runPolicies } from '../sim/run.ts';
import { formatTrace, parseCluster, parseTrace, SimInputError } from '../sim/trace.ts';
import { out, printJson } from './output.ts';
import { CliError, EXIT, globals, type Session } from './session.ts';

function readInput(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.USAGE);
  }
}

function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof SimInputError) throw new CliError(e.message, EXIT.USAGE);
    throw e;
  }
}

function positiveNumber(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new CliError(`${flag} must be a positive number`, EXIT.USAGE);
    return n;
  };
}

interface SimulateOptions {
  trace: string;
  cluster: string;
  policy: string;
  report?: string;
  addGpus?: number;
  quota: string[];
}

export function simulateCommands(program: Command, _session: Session): void {
  const sim = program
    .command('simulate')
    .summary('compare scheduling policies on a trace (virtual clock, no server)')
    .description(
      'Replays a trace (JSONL, one job per line) on a cluster (YAML) under the given policies and prints a side-by-side table.\n' +
        `Policies: ${POLICY_NAMES.join(', ')} (comma list or "all"). Trace and cluster formats: docs/notes/issue4a.md.`,
    )
    .option('--trace <file>', 'trace, JSONL', 'trace.jsonl')
    .option('--cluster <file>', 'cluster, YAML', 'cluster.yaml')
    .option('--policy <names>', 'policy, comma list, or all', 'all')
    .option('--report <file>', 'also write an HTML report here')
    .option('--add-gpus <n>', 'what-if: add workers like the largest GPU worker, this many GPUs in all', positiveNumber('--add-gpus'))
    .option('--quota <spec>', 'what-if: tenant=NAME,RESOURCE=N,… sets nominal quota (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .action((o: SimulateOptions, cmd: Command) => {
      const trace = usage(() => parseTrace(readInput(o.trace, 'trace')));
      if (trace.length === 0) throw new CliError(`trace ${o.trace} has no jobs`, EXIT.USAGE);
      const base = usage(() => parseCluster(readInput(o.cluster, 'cluster')));
      const names = usage(() => parsePolicies(o.policy));
      const spec = usage(() => applyWhatIf(base, { add_gpus: o.addGpus, quota: o.quota.map(parseQuotaArg) }));
      const metrics = runPolicies(trace, spec, names);
      if (o.report) writeFileSync(o.report, htmlReport(metrics, `gantry simulate: ${trace.length} jobs from ${o.trace}`));
      if (globals(cmd).output === 'json') return printJson({ jobs: trace.length, policies: metrics });
      out(`${trace.length} jobs, ${spec.workers.reduce((n, g) => n + g.count, 0)} workers; * = best in row`);
      process.stdout.write(textReport(metrics));
      if (o.report) out(`report written to ${o.report}`);
    });
  sim
    .command('generate')
    .summary('write a seeded synthetic trace and its cluster')
    .addOption(new Option('--kind <kind>', 'kueue: Kueue scheduler-benchmark shape; gpu: GPU-cluster-like').choices(['kueue', 'gpu']).default('kueue'))
    .option('--seed <n>', 'random seed', (v: string) => Math.trunc(positiveNumber('--seed')(v)), 1)
    .option('--scale <x>', `kueue: multiplies the job counts (1 = ${DEFAULT_KUEUE.cohorts * DEFAULT_KUEUE.tenants_per_cohort * 500} jobs)`, positiveNumber('--scale'), 1)
    .option('--jobs <n>', `gpu: number of jobs (default ${DEFAULT_GPU.jobs})`, (v: string) => Math.trunc(positiveNumber('--jobs')(v)))
    .option('--trace <file>', 'trace output', 'trace.jsonl')
    .option('--cluster <file>', 'cluster output', 'cluster.yaml')
    .action((o: { kind: 'kueue' | 'gpu'; seed: number; scale: number; jobs?: number; trace: string; cluster: string }) => {
      const g = o.kind === 'gpu' ? generateGpu({ seed: o.seed, jobs: o.jobs ?? DEFAULT_GPU.jobs }) : generateKueue({ seed: o.seed, scale: o.scale });
      writeFileSync(o.trace, formatTrace(g.trace));
      writeFileSync(o.cluster, g.cluster_yaml);
      out(`wrote ${g.trace.length} jobs to ${o.trace} and the cluster to ${o.cluster}`);
    });
}
