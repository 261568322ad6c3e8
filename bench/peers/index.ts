/**
 * Gantry's benchmark peers (REFERENCE.md §1), one uniform interface. bench/peers is its own package
 * (`npm ci` here) so the main package does not carry BullMQ, graphile-worker or pg-boss.
 *
 * Connection settings: BENCH_REDIS_URL (default redis://127.0.0.1:6379) and BENCH_PG_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres). Every drain()/latency() call uses a fresh, uniquely
 * named queue (BullMQ) or schema (graphile-worker, pg-boss), removes it afterwards, and is bounded
 * by a deadline (it rejects with a message naming the peer and the step instead of hanging).
 */
import { bullmq } from './bullmq.ts';
import { graphileWorker } from './graphile.ts';
import { pgBoss } from './pgboss.ts';
import type { Peer } from './types.ts';

export type { Peer, PeerResult, DrainResult, LatencyResult } from './types.ts';

export const PEERS: Peer[] = [bullmq, graphileWorker, pgBoss];
