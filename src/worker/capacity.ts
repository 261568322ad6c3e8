import { availableParallelism, totalmem } from 'node:os';
import { execFile } from 'node:child_process';

/** GPUs reported by `nvidia-smi`, or 0 when it is absent or fails. */
export function detectGpus(): Promise<number> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', ['--query-gpu=index', '--format=csv,noheader'], { timeout: 5000 }, (err, stdout) => {
      if (err) return resolve(0);
      resolve(stdout.split('\n').filter((l) => l.trim() !== '').length);
    });
  });
}

export interface DetectedCapacity {
  cpu_cores: number;
  memory_gb: number;
  gpu_count: number;
}

/** This machine's cores, memory (GB, one decimal) and GPUs. */
export async function detectCapacity(): Promise<DetectedCapacity> {
  return {
    cpu_cores: availableParallelism(),
    memory_gb: Math.floor((totalmem() / 1024 ** 3) * 10) / 10,
    gpu_count: await detectGpus(),
  };
}
