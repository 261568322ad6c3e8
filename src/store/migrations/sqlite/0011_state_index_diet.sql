-- jobs_state_seq (state, seq) held every job, so every state change moved its entry: a drained job's
-- QUEUED → SCHEDULED and SCHEDULED → COMPLETED each deleted one entry and inserted another. It now
-- leaves out SCHEDULED — the state every job passes through between its placement and its start,
-- held by few jobs at a time (at most the workers' slots) — which is read through jobs_active: placing
-- a job only deletes its QUEUED entry, and a report that takes it on to a final state only inserts one.
-- Both conditions are written as comparisons, not IN lists: SQLite evaluates a partial index's
-- condition on the old and the new row of every UPDATE that sets `state`, and jobs_active's IN list of
-- three values cost ~4 µs per UPDATE (bench/sqlite-floor.ts; docs/notes/issue3l.md). Readers name the
-- conditions word for word (src/store/rows.ts ACTIVE_STATES_SQL / STATE_SEQ_SQL) so that both
-- engines use these partial indexes.
DROP INDEX jobs_state_seq;
CREATE INDEX jobs_state_seq ON jobs (state, seq) WHERE state <> 'SCHEDULED';
DROP INDEX jobs_active;
CREATE INDEX jobs_active ON jobs (worker_id) WHERE (state = 'SCHEDULED' OR state = 'RUNNING' OR state = 'PAUSED');
