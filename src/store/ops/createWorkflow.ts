import type { WorkflowDef } from '../../workflows/definition.ts';
import { newId } from '../../core/ids.ts';
import type { Row, SqlExecutor } from '../driver.ts';

/** One stored version of a workflow definition. Versions are immutable; a run pins one. */
export interface StoredWorkflow {
  id: string;
  name: string;
  version: number;
  description: string;
  definition: WorkflowDef;
  created_at: number;
  created_by: string;
}

// Versions never change, so a parsed definition can be kept for the life of the process.
const parsed = new Map<string, WorkflowDef>();

export function workflowFromRow(r: Row): StoredWorkflow {
  const id = String(r.id);
  let def = parsed.get(id);
  if (!def) {
    def = JSON.parse(String(r.definition)) as WorkflowDef;
    if (parsed.size > 10_000) parsed.clear();
    parsed.set(id, def);
  }
  return {
    id, name: String(r.name), version: Number(r.version), description: String(r.description), definition: def,
    created_at: Number(r.created_at), created_by: String(r.created_by),
  };
}

/**
 * Stores a definition as the next version of its name (1 for a new name). Two concurrent creates
 * of one name cannot both get a version: (name, version) is unique and the loser retries.
 * Params: def — normalized; actor — who created it; now — epoch ms.
 */
export async function createWorkflow(tx: SqlExecutor, def: WorkflowDef, actor: string, now: number): Promise<StoredWorkflow> {
  const last = await tx.query<{ v: number | null }>('SELECT MAX(version) AS v FROM workflows WHERE name = ?', [def.workflow_name]);
  const version = Number(last[0]?.v ?? 0) + 1;
  const id = newId('wf');
  await tx.run('INSERT INTO workflows (id, name, version, description, definition, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)', [
    id, def.workflow_name, version, def.description, JSON.stringify(def), now, actor,
  ]);
  return { id, name: def.workflow_name, version, description: def.description, definition: def, created_at: now, created_by: actor };
}

/**
 * A workflow by id (`wf_…`, one version), by name (its latest version) or `name@version`.
 */
export async function findWorkflow(tx: SqlExecutor, ref: string): Promise<StoredWorkflow | null> {
  let rows: Row[];
  const at = /^(.+)@(\d+)$/.exec(ref);
  if (at) rows = await tx.query('SELECT * FROM workflows WHERE name = ? AND version = ?', [at[1]!, Number(at[2])]);
  else {
    rows = await tx.query('SELECT * FROM workflows WHERE id = ?', [ref]);
    if (rows.length === 0) rows = await tx.query('SELECT * FROM workflows WHERE name = ? ORDER BY version DESC LIMIT 1', [ref]);
  }
  return rows[0] ? workflowFromRow(rows[0]) : null;
}

/** The latest version of every workflow, by name. */
export async function listWorkflows(tx: SqlExecutor): Promise<(StoredWorkflow & { versions: number })[]> {
  const rows = await tx.query(
    `SELECT w.*, c.n AS versions FROM workflows w
     JOIN (SELECT name, MAX(version) AS v, COUNT(*) AS n FROM workflows GROUP BY name) c ON c.name = w.name AND c.v = w.version
     ORDER BY w.name`,
  );
  return rows.map((r) => ({ ...workflowFromRow(r), versions: Number(r.versions) }));
}
