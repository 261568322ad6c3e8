import type { Store } from '../store/store.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import type { TokenInfo } from '../store/store.ts';
import type { BreakerOptions } from '../core/breakers.ts';
import type { ScheduleRunner } from '../schedules/runner.ts';
import type { TenantDirectory } from './tenantDirectory.ts';

export interface ServerContext {
  store: Store;
  scheduler: Scheduler;
  /** Body size limit in bytes. */
  body_limit: number;
  /** Accepted without a store lookup: the embedded worker of `gantry up` uses it. Never stored. */
  internal_token?: string;
  /** Heartbeat interval told to registering workers (ms). Default 1000. */
  heartbeat_interval_ms?: number;
  /** Circuit breaker settings; breakers are off without them. */
  breakers?: BreakerOptions;
  /** Fires cron schedules (on the leader); routes wake it when schedules change. */
  schedules?: ScheduleRunner;
  /** Tenant settings for submit checks (cached briefly; writes through the API refresh it). */
  tenants: TenantDirectory;
  /**
   * Workers whose long poll waits on this server with room for a job and nothing handed to it yet: the
   * worker routes set it, a lone submit's direct placement asks it (src/server/submitCoalescer.ts).
   */
  waitingWorkers?: () => string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: TokenInfo | null;
  }
  interface FastifySchema {
    /** One line for the OpenAPI document. */
    summary?: string;
  }
}

export function actorOf(p: TokenInfo | null): string {
  return p ? `${p.role}:${p.name}` : 'anonymous';
}
