-- jobs_state_seq (state, seq) held every job, so every state change moved its entry: a drained job's
-- QUEUED → SCHEDULED and SCHEDULED → COMPLETED each deleted one entry and inserted another. It now
-- leaves out the states a job holds a worker in (SCHEDULED, RUNNING, PAUSED), which are read through
-- jobs_active (their number is bounded by the workers' slots): placing a job only deletes its QUEUED
-- entry, finishing it only inserts its final one. Readers name the index's condition in their SQL
-- (src/store/rows.ts LISTED_STATES_SQL / ACTIVE_STATES_SQL) so both engines can use the partial index.
DROP INDEX jobs_state_seq;
CREATE INDEX jobs_state_seq ON jobs (state, seq) WHERE state NOT IN ('SCHEDULED', 'RUNNING', 'PAUSED');
