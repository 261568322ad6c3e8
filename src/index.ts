/**
 * `gantry`: embed a Gantry server in your own process (what `gantry server` / `gantry up` run),
 * and the scheduling policies the simulator compares. The client SDK (REST client, Worker,
 * workflow builder) is `gantry/client`.
 */
export { startServer } from './server/run.ts';
export type { RunningServer, StartOptions } from './server/run.ts';
export { POLICIES, gantryPolicy } from './scheduler/policy/policies.ts';
export type { Policy, PolicyConfig, ClusterSnapshot, Decisions } from './scheduler/policy/types.ts';
