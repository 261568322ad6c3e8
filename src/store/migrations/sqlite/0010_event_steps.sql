-- One event row per state change of a job, however many states it passed through: a report that
-- takes a job SCHEDULED → RUNNING → COMPLETED, or a submit (→ SUBMITTED → QUEUED), writes one row
-- whose `steps` lists the states before the last one, as JSON [{to, reason, actor?, data?}]; the
-- row's from_state/to_state are the first and the last state, its reason/actor/data the last step's.
-- NULL (every row written before this migration) = a single step. Read back one event per step
-- (src/store/rows.ts eventsFromRow). Saves an event row (a row and an index entry) per job.
ALTER TABLE job_events ADD COLUMN steps TEXT;
