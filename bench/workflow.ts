/**
 * Workflow benchmark (also part of `npm run bench`):
 *   WF1 step latency: a 40-step chain of no-op handler steps; per step, upstream COMPLETED →
 *       downstream RUNNING from the jobs' own event timestamps; p50/p99 over several runs.
 *   WF2 fan-out: a 1,000-wide `map` of no-op handler steps then a join; run created → finished.
 * Server in its own process, SDK Worker and producer in this one.
 * Run alone: `node bench/workflow.ts [sqlite|postgres|both] [--quick]` (PostgreSQL: BENCH_PG_URL,
 * else 127.0.0.1:5432).
 */
import { Worker } from '../src/client/worker.ts';
import { workflow, workflows } from '../src/client/workflows.ts';
import { freshDb, startGantryServer, type StoreKind } from './gantry.ts';

export interface WorkflowBenchResult {
  wf_step_p50_ms: number;
  wf_step_p99_ms: number;
  wf_step_max_ms: number;
  wf_step_samples: number;
  wf_chain40_total_ms: number;
  wf_fanout1000_total_ms: number;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export async function workflowBench(kind: StoreKind, pgUrl: string, opts: { runs?: number; width?: number } = {}): Promise<WorkflowBenchResult> {
  const runs = opts.runs ?? 5;
  const width = opts.width ?? 1000;
  const db = await freshDb(kind, pgUrl);
  const srv = await startGantryServer(db.url, db.dir);
  const worker = new Worker({
    server: srv.url,
    token: srv.token,
    concurrency: 50,
    prefetch: 200,
    handlers: { noop: async () => ({ ok: true }) },
  });
  await worker.start();
  try {
    const wf = workflows(srv.client);
    const chain = workflow('bench_chain', '40 no-op steps in a line');
    for (let i = 0; i < 40; i++) chain.step(`s${i}`, { handler: 'noop', ...(i > 0 ? { depends_on: [`s${i - 1}`] } : {}) });
    await wf.create(chain);
    const latencies: number[] = [];
    let chainTotal = 0;
    // One warm-up run (prepared statements, JIT), then the measured ones.
    for (let r = 0; r <= runs; r++) {
      const run = await wf.run('bench_chain');
      const done = await wf.waitForRun(run.run_id, { timeout_ms: 120_000, interval_ms: 20 });
      if (done.status !== 'SUCCEEDED') throw new Error(`chain run ${done.run_id} ${done.status}`);
      if (r === 0) continue;
      chainTotal += done.duration_ms ?? 0;
      const at = async (jobId: string, to: string) => {
        const ev = await srv.client.request<{ events: { at: string; to: string }[] }>('GET', `/api/v1/jobs/${jobId}/events`);
        return Date.parse(ev.events.find((e) => e.to === to)!.at);
      };
      for (let i = 1; i < 40; i++) {
        const up = done.steps![i - 1]!.jobs[0]!.job_id;
        const down = done.steps![i]!.jobs[0]!.job_id;
        latencies.push((await at(down, 'RUNNING')) - (await at(up, 'COMPLETED')));
      }
    }
    latencies.sort((a, b) => a - b);
    const fan = workflow('bench_fanout', `${width}-wide map then a join`)
      .param('items', Array.from({ length: width }, (_, i) => i))
      .step('work', { handler: 'noop', map: 'params.items', parameters: { i: '{{ item }}' } })
      .step('join', { handler: 'noop', depends_on: ['work'] });
    await wf.create(fan);
    const f = await wf.waitForRun((await wf.run('bench_fanout')).run_id, { timeout_ms: 300_000, interval_ms: 50 });
    if (f.status !== 'SUCCEEDED') throw new Error(`fan-out run ${f.run_id} ${f.status}`);
    return {
      wf_step_p50_ms: pct(latencies, 50),
      wf_step_p99_ms: pct(latencies, 99),
      wf_step_max_ms: latencies[latencies.length - 1]!,
      wf_step_samples: latencies.length,
      wf_chain40_total_ms: Math.round(chainTotal / runs),
      wf_fanout1000_total_ms: f.duration_ms ?? NaN,
    };
  } finally {
    await worker.stop(0);
    await srv.stop();
    await db.drop();
  }
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const which = args.find((a) => !a.startsWith('--')) ?? 'both';
  const quick = args.includes('--quick');
  const pgUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  for (const kind of (which === 'both' ? ['sqlite', 'postgres'] : [which]) as StoreKind[]) {
    const r = await workflowBench(kind, pgUrl, quick ? { runs: 2, width: 200 } : {});
    console.log(`${kind}: step latency p50 ${r.wf_step_p50_ms} ms, p99 ${r.wf_step_p99_ms} ms, max ${r.wf_step_max_ms} ms over ${r.wf_step_samples} steps; ` +
      `40-step chain ${r.wf_chain40_total_ms} ms; ${quick ? 200 : 1000}-wide fan-out + join ${r.wf_fanout1000_total_ms} ms`);
  }
}
