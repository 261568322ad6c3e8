-- Tenants (issue 4): a tier and only the settings a tenant overrides (JSON per-resource maps,
-- NULL = the tier's default; see src/core/tiers.ts). Quotas are read by every scheduling cycle,
-- so a change takes effect on the next cycle without a restart.
CREATE TABLE tenants (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  tier TEXT NOT NULL,
  cohort TEXT NOT NULL,
  nominal_quota TEXT NOT NULL DEFAULT '{}',
  borrowing_limit TEXT NOT NULL DEFAULT '{}',
  lending_limit TEXT NOT NULL DEFAULT '{}',
  max_running_jobs BIGINT,
  fair_share_weight DOUBLE PRECISION,
  allowed_priorities TEXT,
  paused BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

-- Preemption: whether a job may be preempted (emergency work preempts it regardless), its
-- SIGTERM→SIGKILL grace in seconds (NULL = the worker's default), how many machines it spans,
-- and a pending preemption (JSON {by, reason, at}) until the worker confirms the stop.
ALTER TABLE jobs ADD COLUMN preemptible BIGINT NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN grace_period DOUBLE PRECISION;
ALTER TABLE jobs ADD COLUMN nodes BIGINT NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN preemption TEXT;

-- The scheduler reads each tenant's queue head (fair share across tenants), so a tenant flooding
-- the queue never hides another tenant's jobs behind its own; one range per (queue, tenant), so a backlog in a
-- queue no worker serves is never walked.
CREATE INDEX jobs_queue_by_tenant ON jobs (queue_key, tenant, priority_rank, sort_key, seq) WHERE state = 'QUEUED';
