-- Positions and reorders now count within a job's own queue (jobs_queue_by_key);
-- the whole-queue index only cost writes.
DROP INDEX jobs_queue;
