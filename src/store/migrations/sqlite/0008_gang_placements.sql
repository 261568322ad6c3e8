-- Gang jobs (nodes > 1): one row per member of an attempt — which worker runs rank r, with which
-- GPUs, and how that member is doing. The job row of a gang holds no worker (worker_id NULL): room
-- on each worker is held by its member rows until the member has ended (ended_at set), even after
-- the job itself moved on (a member still being stopped keeps its room).
CREATE TABLE job_placements (
  attempt_id TEXT NOT NULL,
  rank INTEGER NOT NULL,
  job_id TEXT NOT NULL,
  worker_id TEXT NOT NULL,
  gpu_indices TEXT NOT NULL DEFAULT '[]',
  -- assigned → running → completed | failed | timeout | cancelled | preempted | lost | interrupted | dropped
  state TEXT NOT NULL,
  -- The last control handed to this member's worker (cancel, pause, resume, preempt), so each is delivered once.
  control_sent TEXT,
  started_at INTEGER,
  ended_at INTEGER,
  exit_code INTEGER,
  error TEXT,
  result TEXT,
  PRIMARY KEY (attempt_id, rank)
);
-- Members holding room on a worker (delivery, the scheduler's snapshot, lost workers).
CREATE INDEX job_placements_active ON job_placements (worker_id) WHERE ended_at IS NULL;
CREATE INDEX job_placements_job ON job_placements (job_id);
