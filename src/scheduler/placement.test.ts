import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildWorkerViews, fitsEver, fitsNow, pendingReason, runsJob, type PlacementRequest } from './placement.ts';
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

describe('worker views', () => {
  it('buildWorkerViews subtracts what running jobs hold, GPU by index', () => {
    const [v] = buildWorkerViews(
      [worker('w', { cpu_cores: 8, memory_gb: 32, gpu_count: 4, slots: 3 })],
      usage([['w', { cpu_cores: 2.5, memory_gb: 4, gpu_count: 2, slots: 1, gpu_indices: [0, 2] }]]),
    );
    assert.deepEqual(v!.free, { cpu_cores: 5.5, memory_gb: 28, gpu_count: 2, slots: 2 });
    assert.deepEqual(v!.free_gpus, [1, 3]);
  });

  it('handler workers run only their handlers, and process workers only commands', () => {
    const views = buildWorkerViews([worker('h', { slots: 2 }, { kind: 'handler', handlers: ['resize', 'ocr'] }), worker('p')], new Map());
    assert.equal(runsJob(views[0]!, job({ kind: 'handler', handler: 'resize' })), true);
    assert.equal(runsJob(views[0]!, job({ kind: 'handler', handler: 'transcode' })), false);
    assert.equal(runsJob(views[0]!, job({ kind: 'command' })), false);
    assert.equal(runsJob(views[1]!, job({ kind: 'handler', handler: 'resize' })), false);
    assert.equal(fitsNow(views[0]!, job({ kind: 'handler', handler: 'ocr', cpu_cores: 64 })), true, 'handler jobs run in the worker process: only slots count');
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
