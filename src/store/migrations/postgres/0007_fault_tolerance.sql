-- Circuit breakers, one row per key ('executor:process', 'handler:<name>', 'template:<name>'):
-- kept in the store so a new leader sees what the old one saw.
CREATE TABLE breakers (
  key TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  consecutive_failures BIGINT NOT NULL DEFAULT 0,
  opened_at BIGINT,
  probe_at BIGINT,
  probe_job_id TEXT,
  last_error TEXT,
  last_failure_at BIGINT,
  updated_at BIGINT NOT NULL
);

-- The last checkpoint a job saved (one per job; a new one replaces it). Kept across attempts.
CREATE TABLE job_checkpoints (
  job_id TEXT PRIMARY KEY,
  attempt_id TEXT NOT NULL,
  attempt BIGINT NOT NULL,
  data TEXT NOT NULL,
  size BIGINT NOT NULL,
  at BIGINT NOT NULL
);
