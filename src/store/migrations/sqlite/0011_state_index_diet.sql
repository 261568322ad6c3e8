-- jobs_state_seq (state, seq) held every job, so every state change moved its entry: a drained job's
-- QUEUED → SCHEDULED and SCHEDULED → COMPLETED each deleted one entry and inserted another. It now
-- leaves out the states a job holds a worker in (SCHEDULED, RUNNING, PAUSED), which are read through
-- jobs_active (their number is bounded by the workers' slots): placing a job only deletes its QUEUED
-- entry, finishing it only inserts its final one.
-- Both conditions are written as comparisons, not IN lists: SQLite evaluates a partial index's
-- condition on the old and the new row of every UPDATE that sets `state`, and an IN list of three
-- values cost ~4 µs per evaluation (bench/sqlite-floor.ts; docs/notes/issue3l.md). Readers name the
-- conditions word for word (src/store/rows.ts ACTIVE_STATES_SQL / LISTED_STATES_SQL) so that both
-- engines use these partial indexes.
DROP INDEX jobs_state_seq;
CREATE INDEX jobs_state_seq ON jobs (state, seq) WHERE state <> 'SCHEDULED' AND state <> 'RUNNING' AND state <> 'PAUSED';
DROP INDEX jobs_active;
CREATE INDEX jobs_active ON jobs (worker_id) WHERE (state = 'SCHEDULED' OR state = 'RUNNING' OR state = 'PAUSED');
