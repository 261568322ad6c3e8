import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildWorkerViews, fitsEver, fitsNow, pendingReason, place, reserve, runsJob, type PlacementRequest } from './placement.ts';
import type { WorkerInfo, WorkerUsage } from '../core/types.ts';

function worker(id: string, cap: Partial<WorkerInfo['capacity']> = {}, extra: Partial<WorkerInfo> = {}): WorkerInfo {
  return {
    id, name: id, kind: 'process', handlers: [], labels: {}, state: 'online', registered_at: 0, last_heartbeat: 0,
    capacity: { cpu_cores: 4, memory_gb: 8, gpu_count: 0, slots: 4, ...cap },
    ...extra,
  };
}
function job(r: Partial<PlacementRequest> = {}): PlacementRequest {
  return { kind: 'command', handler: null, cpu_cores: 1, memory_gb: 0.25, gpu_count: 0, ...r };
}
const usage = (entries: [string, Partial<WorkerUsage>][]) =>
  new Map(entries.map(([id, u]) => [id, { cpu_cores: 0, memory_gb: 0, gpu_count: 0, slots: 0, gpu_indices: [], ...u }]));

describe('placement', () => {
  it('buildWorkerViews subtracts what running jobs hold, GPU by index', () => {
    const [v] = buildWorkerViews(
      [worker('w', { cpu_cores: 8, memory_gb: 32, gpu_count: 4, slots: 3 })],
      usage([['w', { cpu_cores: 2.5, memory_gb: 4, gpu_count: 2, slots: 1, gpu_indices: [0, 2] }]]),
    );
    assert.deepEqual(v!.free, { cpu_cores: 5.5, memory_gb: 28, gpu_count: 2, slots: 2 });
    assert.deepEqual(v!.free_gpus, [1, 3]);
  });

  it('best fit: a CPU job goes to the worker it fills most, keeping the big one free', () => {
    const views = buildWorkerViews([worker('big', { cpu_cores: 32 }), worker('small', { cpu_cores: 4 }), worker('mid', { cpu_cores: 8 })], new Map());
    assert.equal(place(views, job({ cpu_cores: 2 }))?.worker.id, 'small');
    assert.equal(place(views, job({ cpu_cores: 6 }))?.worker.id, 'mid', 'does not fit on small');
    assert.equal(place(views, job({ cpu_cores: 20 }))?.worker.id, 'big');
    assert.equal(place(views, job({ cpu_cores: 40 })), null);
  });

  it('best fit looks at free room, not total size', () => {
    const views = buildWorkerViews(
      [worker('a', { cpu_cores: 16 }), worker('b', { cpu_cores: 8 })],
      usage([['a', { cpu_cores: 14, slots: 1 }]]),
    );
    assert.equal(place(views, job({ cpu_cores: 1 }))?.worker.id, 'a', 'a has 2 free, b has 8');
  });

  it('CPU-only jobs stay off GPU machines when a CPU machine fits', () => {
    const views = buildWorkerViews([worker('gpu', { cpu_cores: 4, gpu_count: 2 }), worker('cpu', { cpu_cores: 16 })], new Map());
    assert.equal(place(views, job({ cpu_cores: 1 }))?.worker.id, 'cpu');
  });

  it('GPU jobs pack onto the fuller machine and take the lowest free indices', () => {
    const views = buildWorkerViews(
      [worker('empty', { cpu_cores: 16, gpu_count: 8 }), worker('busy', { cpu_cores: 16, gpu_count: 8 })],
      usage([['busy', { gpu_count: 5, slots: 1, cpu_cores: 1, gpu_indices: [0, 1, 2, 4, 5] }]]),
    );
    const spot = place(views, job({ gpu_count: 2 }));
    assert.equal(spot?.worker.id, 'busy');
    assert.deepEqual(spot?.gpu_indices, [3, 6]);
    // A job needing more GPUs than the busy machine has left goes to the empty one.
    const big = place(views, job({ gpu_count: 4 }));
    assert.equal(big?.worker.id, 'empty');
    assert.deepEqual(big?.gpu_indices, [0, 1, 2, 3]);
  });

  it('reserve takes resources within a cycle so the next placements see them', () => {
    const views = buildWorkerViews([worker('w', { cpu_cores: 4, memory_gb: 8, gpu_count: 4, slots: 3 })], new Map());
    const j = job({ cpu_cores: 2, memory_gb: 3, gpu_count: 2 });
    const first = place(views, j)!;
    reserve(first.worker, j, first.gpu_indices);
    assert.deepEqual(first.gpu_indices, [0, 1]);
    const second = place(views, j)!;
    assert.deepEqual(second.gpu_indices, [2, 3], 'distinct GPUs for the second job');
    reserve(second.worker, j, second.gpu_indices);
    assert.deepEqual(views[0]!.free, { cpu_cores: 0, memory_gb: 2, gpu_count: 0, slots: 1 });
    assert.equal(place(views, job({ cpu_cores: 0.5, memory_gb: 0.5 })), null, 'no cpu left');
  });

  it('slots bound how many jobs a worker takes even when cpu is left', () => {
    const views = buildWorkerViews([worker('w', { cpu_cores: 64, slots: 2 })], usage([['w', { slots: 2, cpu_cores: 2 }]]));
    assert.equal(place(views, job()), null);
  });

  it('handler workers take only their handlers, and process workers only commands', () => {
    const h = worker('h', { slots: 2 }, { kind: 'handler', handlers: ['resize', 'ocr'] });
    const p = worker('p');
    const views = buildWorkerViews([h, p], new Map());
    assert.equal(place(views, job({ kind: 'handler', handler: 'resize' }))?.worker.id, 'h');
    assert.equal(place(views, job({ kind: 'handler', handler: 'transcode' })), null);
    assert.equal(place(views, job({ kind: 'command' }))?.worker.id, 'p');
    assert.equal(runsJob(views[0]!, job({ kind: 'command' })), false);
    assert.equal(runsJob(views[1]!, job({ kind: 'handler', handler: 'resize' })), false);
  });

  it('handler jobs run in the worker process: only slots count, and no GPUs are assigned', () => {
    const views = buildWorkerViews([worker('h', { cpu_cores: 1, slots: 1 }, { kind: 'handler', handlers: ['x'] })], new Map());
    const spot = place(views, job({ kind: 'handler', handler: 'x', cpu_cores: 8 }));
    assert.equal(spot?.worker.id, 'h');
    assert.deepEqual(spot?.gpu_indices, []);
    reserve(spot!.worker, job({ kind: 'handler', handler: 'x' }), []);
    assert.equal(place(views, job({ kind: 'handler', handler: 'x' })), null, 'its one slot is taken');
  });

  it('fitsNow vs fitsEver: a busy worker fits a job later but not now', () => {
    const [v] = buildWorkerViews([worker('w', { cpu_cores: 4 })], usage([['w', { cpu_cores: 3, slots: 1 }]]));
    assert.equal(fitsNow(v!, job({ cpu_cores: 2 })), false);
    assert.equal(fitsEver(v!, job({ cpu_cores: 2 })), true);
    assert.equal(fitsEver(v!, job({ cpu_cores: 5 })), false);
  });
});

describe('pendingReason', () => {
  it('null when some worker can take the job now', () => {
    const views = buildWorkerViews([worker('w')], new Map());
    assert.equal(pendingReason(views, job()), null);
  });

  it('names the resource no worker is large enough for, with the largest worker size', () => {
    const views = buildWorkerViews([worker('a', { cpu_cores: 2, memory_gb: 4 }), worker('b', { cpu_cores: 1, memory_gb: 16 })], new Map());
    assert.equal(pendingReason(views, job({ cpu_cores: 16 })), 'no worker is large enough: needs cpu_cores 16 (largest worker has 2)');
    assert.equal(
      pendingReason(views, job({ cpu_cores: 16, memory_gb: 64, gpu_count: 1 })),
      'no worker is large enough: needs cpu_cores 16 (largest worker has 2), memory_gb 64 (largest worker has 16), gpu_count 1 (largest worker has 0)',
    );
  });

  it('no single worker fits although each resource exists somewhere', () => {
    const views = buildWorkerViews([worker('a', { cpu_cores: 8, memory_gb: 1 }), worker('b', { cpu_cores: 1, memory_gb: 32 })], new Map());
    assert.equal(pendingReason(views, job({ cpu_cores: 4, memory_gb: 16 })), 'no worker is large enough: needs more than any single worker offers');
  });

  it('explains a job that waits for resources with what each capable worker has free', () => {
    const views = buildWorkerViews([worker('w1', { cpu_cores: 4, memory_gb: 8, slots: 2 })], usage([['w1', { cpu_cores: 3.5, memory_gb: 2, slots: 1 }]]));
    assert.equal(
      pendingReason(views, job({ cpu_cores: 2, memory_gb: 1 })),
      'waiting for resources: needs 2 cpu, 1 GB, 0 GPUs; w1: 1 slots, 0.5 cpu, 6 GB, 0 GPUs free',
    );
  });

  it('says when no worker runs the job at all', () => {
    const views = buildWorkerViews([worker('p')], new Map());
    assert.equal(pendingReason(views, job({ kind: 'handler', handler: 'ocr' })), "no online worker runs handler 'ocr'");
    assert.equal(pendingReason([], job()), 'no online process worker');
  });
});
