/** The uniform result and peer shapes every peer implementation returns (re-exported by index.ts). */

export interface PeerResult {
  peer: string;
  version: string;
  config: string;
  durability: string;
}

export interface DrainResult extends PeerResult {
  jobs: number;
  submit_per_s: number;
  drain_per_s: number;
  /** CPU per drained job (µs): this process (the peer's worker) and its local database service (null when remote). */
  app_cpu_us: number;
  db_cpu_us: number | null;
}

export interface LatencyResult extends PeerResult {
  samples: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

export interface Peer {
  name: 'bullmq' | 'graphile-worker' | 'pg-boss';
  /** null when reachable, else the reason it is skipped (e.g. 'Redis not reachable at 127.0.0.1:6379'). */
  available(): Promise<string | null>;
  /** W1: enqueue `jobs` no-op jobs in bulk chunks of 1,000, then drain with ONE worker at `concurrency`; drain rate measured from first handler start to last completion. */
  drain(jobs: number, concurrency: number): Promise<DrainResult>;
  /** W2: worker idle and waiting; the producer submits one job at a time at `rate`/s for `seconds` s with a timestamp in the payload; the handler computes submit→handler-start latency. */
  latency(rate: number, seconds: number): Promise<LatencyResult>;
}
