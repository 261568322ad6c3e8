-- One queue per kind of executor: '' for command jobs, the handler name for handler jobs.
-- The scheduler reads only the queues some online worker can serve, so a backlog that no
-- worker takes never hides the jobs behind it.
ALTER TABLE jobs ADD COLUMN queue_key TEXT NOT NULL DEFAULT '';
UPDATE jobs SET queue_key = handler WHERE handler IS NOT NULL;
CREATE INDEX jobs_queue_by_key ON jobs (queue_key, priority_rank, sort_key, seq) WHERE state = 'QUEUED';
-- Pending controls (cancel, pause, resume) a worker must receive.
CREATE INDEX jobs_control ON jobs (worker_id) WHERE control IS NOT NULL;
