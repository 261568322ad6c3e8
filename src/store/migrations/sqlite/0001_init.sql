-- Gantry schema v1 (SQLite). Times are epoch milliseconds; JSON is stored as text.
CREATE TABLE tokens (
  id TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  tenant TEXT,
  created_at INTEGER NOT NULL
);

CREATE TABLE jobs (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  tenant TEXT NOT NULL,
  priority TEXT NOT NULL,
  priority_rank INTEGER NOT NULL,
  state TEXT NOT NULL,
  kind TEXT NOT NULL,
  command TEXT,
  handler TEXT,
  env TEXT NOT NULL,
  working_dir TEXT,
  timeout REAL,
  retry_policy TEXT NOT NULL,
  labels TEXT NOT NULL,
  parameters TEXT NOT NULL,
  idempotency_key TEXT,
  expected_duration REAL,
  cpu_cores REAL NOT NULL,
  memory_gb REAL NOT NULL,
  gpu_count INTEGER NOT NULL,
  storage_gb REAL NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  queued_at INTEGER,
  started_at INTEGER,
  finished_at INTEGER,
  sort_key REAL NOT NULL,
  run_after INTEGER,
  worker_id TEXT,
  gpu_indices TEXT NOT NULL DEFAULT '[]',
  attempt_count INTEGER NOT NULL DEFAULT 0,
  retry_count INTEGER NOT NULL DEFAULT 0,
  current_attempt_id TEXT,
  control TEXT,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  result TEXT,
  error TEXT,
  exit_code INTEGER,
  progress REAL,
  dead_lettered_at INTEGER
);
-- The queue index: pending work in scheduling order (priority class, then position).
CREATE INDEX jobs_queue ON jobs (priority_rank, sort_key, seq) WHERE state = 'QUEUED';
-- Jobs holding resources on a worker.
CREATE INDEX jobs_active ON jobs (worker_id) WHERE state IN ('SCHEDULED', 'RUNNING', 'PAUSED');
CREATE INDEX jobs_retry ON jobs (run_after) WHERE state = 'RETRYING';
CREATE INDEX jobs_dead ON jobs (dead_lettered_at) WHERE dead_lettered_at IS NOT NULL;
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_state_seq ON jobs (state, seq);
CREATE INDEX jobs_tenant_seq ON jobs (tenant, seq);
CREATE INDEX jobs_type_finished ON jobs (type, finished_at) WHERE state = 'COMPLETED';

CREATE TABLE job_attempts (
  id TEXT PRIMARY KEY,
  job_id TEXT NOT NULL,
  number INTEGER NOT NULL,
  worker_id TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  exit_code INTEGER,
  error TEXT,
  outcome TEXT NOT NULL
);
CREATE INDEX job_attempts_job ON job_attempts (job_id, number);

CREATE TABLE job_events (
  id INTEGER PRIMARY KEY,
  job_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  from_state TEXT,
  to_state TEXT NOT NULL,
  reason TEXT NOT NULL,
  actor TEXT NOT NULL,
  data TEXT
);
CREATE INDEX job_events_job ON job_events (job_id, id);

CREATE TABLE job_logs (
  seq INTEGER PRIMARY KEY,
  job_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  stream TEXT NOT NULL,
  data TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX job_logs_job ON job_logs (job_id, seq);

CREATE TABLE workers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  handlers TEXT NOT NULL,
  cpu_cores REAL NOT NULL,
  memory_gb REAL NOT NULL,
  gpu_count INTEGER NOT NULL,
  slots INTEGER NOT NULL,
  labels TEXT NOT NULL,
  state TEXT NOT NULL,
  registered_at INTEGER NOT NULL,
  last_heartbeat INTEGER NOT NULL
);
