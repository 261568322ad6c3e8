-- Issue 5: job templates (versioned), job dependencies, and the "reached a final state" hook.
-- watched = 1: something reacts when this job ends (a dependent job, a workflow step); see src/store/finalHooks.ts.
ALTER TABLE jobs ADD COLUMN watched INTEGER NOT NULL DEFAULT 0;
-- The template (id and version) a job was rendered from, if any.
ALTER TABLE jobs ADD COLUMN template TEXT;
ALTER TABLE jobs ADD COLUMN template_version INTEGER;
-- Execution steps run in order as one job: JSON [{name, command, timeout}], or NULL.
ALTER TABLE jobs ADD COLUMN steps TEXT;
-- all_complete | any_complete | all_done | any_failed; NULL when the job has no dependencies.
ALTER TABLE jobs ADD COLUMN dependency_type TEXT;

CREATE TABLE job_dependencies (
  job_id TEXT NOT NULL,
  depends_on TEXT NOT NULL,
  PRIMARY KEY (job_id, depends_on)
);
CREATE INDEX job_dependencies_upstream ON job_dependencies (depends_on);

-- One row per version; PUT adds a version. definition = the resolved template (base merged in).
CREATE TABLE job_templates (
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  name TEXT NOT NULL,
  category TEXT,
  description TEXT,
  source TEXT NOT NULL,
  definition TEXT NOT NULL,
  builtin INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  created_by TEXT NOT NULL,
  deleted_at BIGINT,
  PRIMARY KEY (id, version)
);
