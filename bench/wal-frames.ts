/**
 * WAL frames (pages written) per job transition on SQLite, through the store: `node bench/wal-frames.ts [jobs] [batch]`.
 * Submits `batch` handler jobs at a time (a W2 job: 1), places them on one worker, hands them out and reports them
 * completed, as the server does, and reads after each step how many frames the WAL holds (`mxFrame` of the
 * wal-index header in the -shm file). A step during which the WAL started over (a checkpoint) is left out.
 * Prints frames per job for submit, assignment and report — the pages each transaction dirtied, each a 4 KiB write.
 */
import { openSync, readSync, closeSync } from 'node:fs';
import { openStore } from '../src/store/store.ts';
import { normalizeJobSpec } from '../src/core/jobSpec.ts';
import { DEFAULT_BREAKER_OPTIONS } from '../src/core/breakers.ts';
import { freshDb } from './gantry.ts';

const JOBS = Number(process.argv[2] ?? 2000);
const BATCH = Number(process.argv[3] ?? 1);
// Jobs first moved through the database unmeasured, so the tables and indexes are past their first pages.
const WARM = Number(process.env.FRAMES_WARM ?? 5000);

const db = await freshDb('sqlite', '');
const store = await openStore(db.url);
/** The wal-index header's mxFrame (bytes 16–19, native order): the frames in the WAL that are valid. */
const buf = Buffer.alloc(4);
function frames(): number {
  const fd = openSync(`${db.url}-shm`, 'r');
  try {
    readSync(fd, buf, 0, 4, 16);
  } finally {
    closeSync(fd);
  }
  return buf.readUInt32LE(0);
}
const wid = 'wkr_frames';
await store.registerWorker({ id: wid, name: 'frames', kind: 'handler', handlers: ['noop'], capacity: { cpu_cores: 1e6, memory_gb: 1e6, gpu_count: 0, slots: 1e6 }, labels: {} });
const sums = { submit: [0, 0], assign: [0, 0], report: [0, 0] } as Record<string, [number, number]>;
async function step(name: string, n: number, f: () => Promise<unknown>, measured: boolean): Promise<void> {
  const before = frames();
  await f();
  const after = frames();
  if (measured && after >= before) {
    sums[name]![0] += after - before;
    sums[name]![1] += n;
  }
}
for (let done = 0; done < WARM + JOBS; done += BATCH) {
  const measured = done >= WARM;
  let ids: string[] = [];
  await step('submit', BATCH, async () => {
    ids = (await store.submitJobs(Array.from({ length: BATCH }, () => normalizeJobSpec({ handler: 'noop' })), 'bench')).map((r) => r.job.id);
  }, measured);
  await step('assign', BATCH, () => store.applySchedulingDecisions(ids.map((id) => ({ job_id: id, worker_id: wid, gpu_indices: [] })), []), measured);
  const d = await store.deliverToWorker(wid, BATCH);
  await step('report', BATCH, () => store.reportResults(wid, d.jobs.map((j) => ({ job_id: j.id, attempt_id: j.current_attempt_id!, outcome: 'completed' as const, result: null })), Date.now(), DEFAULT_BREAKER_OPTIONS), measured);
}
let total = 0;
const parts = Object.entries(sums).map(([k, [f, n]]) => {
  total += f / n;
  return `${k} ${(f / n).toFixed(2)}`;
});
console.log(`WAL frames per job (batch ${BATCH}, ${JOBS} jobs after ${WARM}): ${parts.join(', ')}; total ${total.toFixed(2)}`);
await store.close();
await db.drop();
