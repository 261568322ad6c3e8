import type { WorkerInfo, WorkerUsage } from '../core/types.ts';

/** A worker as the scheduler sees it during one cycle: what it has free right now. */
export interface WorkerSlotView {
  id: string;
  kind: WorkerInfo['kind'];
  handlers: ReadonlySet<string>;
  total: WorkerInfo['capacity'];
  free: { cpu_cores: number; memory_gb: number; gpu_count: number; slots: number };
  free_gpus: number[];
}

/** What placement needs to know about a job. */
export interface PlacementRequest {
  kind: 'command' | 'handler';
  handler: string | null;
  cpu_cores: number;
  memory_gb: number;
  gpu_count: number;
}

const EPS = 1e-9;

export function buildWorkerViews(workers: readonly WorkerInfo[], usage: ReadonlyMap<string, WorkerUsage>): WorkerSlotView[] {
  return workers.map((w) => {
    const u = usage.get(w.id);
    const used = new Set(u?.gpu_indices ?? []);
    const freeGpus: number[] = [];
    for (let i = 0; i < w.capacity.gpu_count; i++) if (!used.has(i)) freeGpus.push(i);
    return {
      id: w.id,
      kind: w.kind,
      handlers: new Set(w.handlers),
      total: w.capacity,
      free: {
        cpu_cores: w.capacity.cpu_cores - (u?.cpu_cores ?? 0),
        memory_gb: w.capacity.memory_gb - (u?.memory_gb ?? 0),
        gpu_count: freeGpus.length,
        slots: w.capacity.slots - (u?.slots ?? 0),
      },
      free_gpus: freeGpus,
    };
  });
}

/** Can this kind of worker run this job at all (ignoring what is in use)? */
export function runsJob(w: Pick<WorkerSlotView, 'kind' | 'handlers'>, j: PlacementRequest): boolean {
  return j.kind === 'command' ? w.kind === 'process' : w.kind === 'handler' && j.handler !== null && w.handlers.has(j.handler);
}

/** Does the job fit in `room` (free or total)? Handler workers count slots only: the job runs inside their process. */
function fitsIn(w: WorkerSlotView, room: WorkerSlotView['free'], j: PlacementRequest): boolean {
  if (room.slots < 1) return false;
  if (w.kind === 'handler') return true;
  return room.cpu_cores + EPS >= j.cpu_cores && room.memory_gb + EPS >= j.memory_gb && room.gpu_count >= j.gpu_count;
}

export function fitsNow(w: WorkerSlotView, j: PlacementRequest): boolean {
  return runsJob(w, j) && fitsIn(w, w.free, j);
}

export function fitsEver(w: WorkerSlotView, j: PlacementRequest): boolean {
  return runsJob(w, j) && fitsIn(w, w.total, j);
}

/**
 * Why a job cannot start now, in plain words — or null if some worker could take it this moment.
 */
export function pendingReason(workers: readonly WorkerSlotView[], j: PlacementRequest): string | null {
  const capable = workers.filter((w) => runsJob(w, j));
  if (capable.length === 0) {
    return j.kind === 'handler'
      ? `no online worker runs handler '${j.handler}'`
      : 'no online process worker';
  }
  const ever = capable.filter((w) => fitsEver(w, j));
  if (ever.length === 0) {
    const max = (k: 'cpu_cores' | 'memory_gb' | 'gpu_count') => Math.max(...capable.map((w) => w.total[k]));
    const short: string[] = [];
    if (j.cpu_cores > max('cpu_cores') + EPS) short.push(`cpu_cores ${j.cpu_cores} (largest worker has ${max('cpu_cores')})`);
    if (j.memory_gb > max('memory_gb') + EPS) short.push(`memory_gb ${j.memory_gb} (largest worker has ${max('memory_gb')})`);
    if (j.gpu_count > max('gpu_count')) short.push(`gpu_count ${j.gpu_count} (largest worker has ${max('gpu_count')})`);
    return `no worker is large enough: needs ${short.join(', ') || 'more than any single worker offers'}`;
  }
  if (ever.some((w) => fitsNow(w, j))) return null;
  const free = ever
    .map((w) => `${w.id}: ${w.free.slots} slots, ${round(w.free.cpu_cores)} cpu, ${round(w.free.memory_gb)} GB, ${w.free.gpu_count} GPUs free`)
    .join('; ');
  return `waiting for resources: needs ${j.cpu_cores} cpu, ${j.memory_gb} GB, ${j.gpu_count} GPUs; ${free}`;
}

const round = (n: number) => Math.round(n * 100) / 100;
