-- Circuit breakers, one row per key ('executor:process', 'handler:<name>', 'template:<name>'):
-- kept in the store so a new leader sees what the old one saw.
CREATE TABLE breakers (
  key TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  opened_at INTEGER,
  probe_at INTEGER,
  probe_job_id TEXT,
  last_error TEXT,
  last_failure_at INTEGER,
  updated_at INTEGER NOT NULL
);

-- The last checkpoint a job saved (one per job; a new one replaces it). Kept across attempts.
CREATE TABLE job_checkpoints (
  job_id TEXT PRIMARY KEY,
  attempt_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  data TEXT NOT NULL,
  size INTEGER NOT NULL,
  at INTEGER NOT NULL
);
