-- Workflows (versioned definitions, runs, steps, step jobs) and cron schedules with their fires.
-- Times are epoch milliseconds; JSON is stored as text.
CREATE TABLE workflows (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  description TEXT NOT NULL,
  definition TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  created_by TEXT NOT NULL,
  UNIQUE (name, version)
);

CREATE TABLE workflow_runs (
  id TEXT PRIMARY KEY,
  workflow_id TEXT NOT NULL,
  workflow_name TEXT NOT NULL,
  version INTEGER NOT NULL,
  state TEXT NOT NULL,
  parameters TEXT NOT NULL,
  trigger_info TEXT NOT NULL,
  rerun_of TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  finished_at BIGINT,
  created_by TEXT NOT NULL
);
CREATE INDEX workflow_runs_by_name ON workflow_runs (workflow_name, created_at);

CREATE TABLE workflow_run_steps (
  run_id TEXT NOT NULL,
  step_id TEXT NOT NULL,
  state TEXT NOT NULL,
  outputs TEXT,
  error TEXT,
  map_total INTEGER,
  started_at BIGINT,
  finished_at BIGINT,
  reused_from TEXT,
  PRIMARY KEY (run_id, step_id)
);

CREATE TABLE workflow_step_jobs (
  job_id TEXT PRIMARY KEY,
  run_id TEXT NOT NULL,
  step_id TEXT NOT NULL,
  map_index INTEGER NOT NULL,
  state TEXT NOT NULL,
  outputs TEXT
);
CREATE INDEX workflow_step_jobs_by_step ON workflow_step_jobs (run_id, step_id, map_index);

CREATE TABLE schedules (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  cron TEXT NOT NULL,
  timezone TEXT NOT NULL,
  target_kind TEXT NOT NULL,
  target TEXT NOT NULL,
  catchup TEXT NOT NULL,
  catchup_window INTEGER NOT NULL,
  overlap TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  cursor_at BIGINT NOT NULL,
  buffered_fire BIGINT,
  last_target_id TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

CREATE TABLE schedule_fires (
  schedule_id TEXT NOT NULL,
  fire_time BIGINT NOT NULL,
  kind TEXT NOT NULL,
  outcome TEXT NOT NULL,
  target_id TEXT,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (schedule_id, fire_time)
);
