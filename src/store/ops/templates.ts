/**
 * Job templates, versioned: one `job_templates` row per (id, version). The latest version of a
 * template is the live one; PUT adds a version; DELETE marks every version deleted (jobs that
 * ran a version can still show it). `source` is what the user sent (merged over PUTs),
 * `definition` the resolved template (src/templates/definition.ts).
 */
import { GantryError, notFound, validationError } from '../../core/errors.ts';
import { compileTemplate, templateIdFrom, type TemplateDefinition, type TemplateRequest } from '../../templates/definition.ts';
import type { TemplateSource } from '../../templates/render.ts';
import type { SqlExecutor } from '../driver.ts';

export interface StoredTemplate {
  definition: TemplateDefinition;
  builtin: boolean;
  created_at: number;
  created_by: string;
  /** Every version of this template, oldest first. */
  versions?: number[];
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

function fromRow(r: Record<string, unknown>): StoredTemplate {
  return {
    definition: JSON.parse(String(r.definition)) as TemplateDefinition,
    builtin: Number(r.builtin) === 1,
    created_at: Number(r.created_at),
    created_by: String(r.created_by),
  };
}

/** The latest live version, or version `version` (deleted or not); `versions` lists them all unless `bare`. */
export async function getTemplate(db: SqlExecutor, id: string, version?: number, bare = false): Promise<StoredTemplate | null> {
  const rows = version === undefined
    ? await db.query(`SELECT * FROM job_templates WHERE id = ? ORDER BY version DESC LIMIT 1`, [id])
    : await db.query(`SELECT * FROM job_templates WHERE id = ? AND version = ?`, [id, version]);
  const r = rows[0];
  if (!r || (version === undefined && r.deleted_at !== null)) return null;
  const t = fromRow(r);
  if (bare) return t;
  const vs = await db.query(`SELECT version FROM job_templates WHERE id = ? ORDER BY version`, [id]);
  t.versions = vs.map((v) => Number(v.version));
  return t;
}

/** A TemplateSource over a transaction or the store's connection (for renderTemplate). */
export function templatesIn(db: SqlExecutor): TemplateSource {
  return { getTemplate: async (id, version) => (await getTemplate(db, id, version, true))?.definition ?? null };
}

/** The live templates (latest version of each), by id. */
export async function listTemplates(db: SqlExecutor, category?: string): Promise<StoredTemplate[]> {
  const rows = await db.query(
    `SELECT t.* FROM job_templates t
     JOIN (SELECT id, MAX(version) AS version FROM job_templates GROUP BY id) m ON m.id = t.id AND m.version = t.version
     WHERE t.deleted_at IS NULL AND (CAST(? AS TEXT) IS NULL OR t.category = ?) ORDER BY t.id`,
    [category ?? null, category ?? null],
  );
  return rows.map(fromRow);
}

async function resolveBase(db: SqlExecutor, req: TemplateRequest): Promise<TemplateDefinition | null> {
  if (!req.base_template) return null;
  const base = await getTemplate(db, req.base_template);
  if (!base) throw validationError('base_template', `unknown template '${req.base_template}'`);
  return base.definition;
}

async function insertVersion(db: SqlExecutor, def: TemplateDefinition, source: TemplateRequest, builtin: boolean, actor: string, now: number): Promise<void> {
  await db.run(
    `INSERT INTO job_templates (id, version, name, category, description, source, definition, builtin, created_at, created_by, deleted_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
    [def.id, def.version, def.name, def.category, def.description, JSON.stringify(source), JSON.stringify(def), builtin ? 1 : 0, now, actor],
  );
}

async function latestVersion(db: SqlExecutor, id: string): Promise<{ version: number; deleted: boolean; source: TemplateRequest } | null> {
  const r = (await db.query(`SELECT version, deleted_at, source FROM job_templates WHERE id = ? ORDER BY version DESC LIMIT 1`, [id]))[0];
  return r ? { version: Number(r.version), deleted: r.deleted_at !== null, source: JSON.parse(String(r.source)) as TemplateRequest } : null;
}

/**
 * POST /templates: a new template, version 1 (or the next number if one of that id was deleted,
 * so a (id, version) pinned by old jobs never changes meaning). Its id is `id`, else `name` when
 * that is an identifier, else a slug of `name`. An existing live id is a CONFLICT (use PUT).
 */
export async function createTemplate(tx: SqlExecutor, req: TemplateRequest, actor: string, now: number): Promise<StoredTemplate> {
  if (!req.name && !req.id) throw validationError('name', 'is required');
  const id = req.id ?? (ID_PATTERN.test(req.name!) ? req.name! : templateIdFrom(req.name!));
  if (!ID_PATTERN.test(id)) throw validationError('id', 'use letters, digits, _ . - (up to 100), starting with a letter or digit');
  const last = await latestVersion(tx, id);
  if (last && !last.deleted) {
    throw new GantryError('CONFLICT', `template ${id} exists (version ${last.version}); PUT /api/v1/templates/${id} makes a new version`, { field: 'name', id });
  }
  const version = (last?.version ?? 0) + 1;
  const source = { ...req, id };
  const def = compileTemplate(source, id, version, await resolveBase(tx, source));
  await insertVersion(tx, def, source, false, actor, now);
  return (await getTemplate(tx, id))!;
}

/**
 * PUT /templates/{id}: a new version. Fields given replace the previous version's; fields left
 * out are kept. A base template is re-resolved at its latest version.
 */
export async function updateTemplate(tx: SqlExecutor, id: string, req: TemplateRequest, actor: string, now: number): Promise<StoredTemplate> {
  const last = await latestVersion(tx, id);
  if (!last || last.deleted) throw notFound('template', id);
  if (req.id !== undefined && req.id !== id) throw validationError('id', `does not match the template in the path (${id})`);
  const source: TemplateRequest = { ...last.source, ...req, id };
  const def = compileTemplate(source, id, last.version + 1, await resolveBase(tx, source));
  await insertVersion(tx, def, source, false, actor, now);
  return (await getTemplate(tx, id))!;
}

/** DELETE /templates/{id}. Refused while a live template inherits from it. */
export async function deleteTemplate(tx: SqlExecutor, id: string, now: number): Promise<void> {
  const last = await latestVersion(tx, id);
  if (!last || last.deleted) throw notFound('template', id);
  const heirs = (await listTemplates(tx)).filter((t) => t.definition.base_template === id).map((t) => t.definition.id);
  if (heirs.length > 0) {
    throw new GantryError('CONFLICT', `template ${id} is the base_template of ${heirs.join(', ')}; delete or rebase those first`, { id, heirs });
  }
  await tx.run('UPDATE job_templates SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL', [now, id]);
}

/**
 * Loads built-in templates as version 1 when no template of that id was ever stored (a deleted
 * built-in stays deleted). Safe when two servers start at once. Returns the ids added.
 */
export async function ensureTemplates(tx: SqlExecutor, requests: readonly TemplateRequest[], now: number): Promise<string[]> {
  const added: string[] = [];
  const pending = [...requests];
  // Bases first: a built-in may inherit from another built-in.
  for (let round = 0; pending.length > 0 && round < 10; round++) {
    for (const req of [...pending]) {
      if (req.base_template && pending.some((p) => p.id === req.base_template)) continue;
      pending.splice(pending.indexOf(req), 1);
      const id = req.id!;
      if (await latestVersion(tx, id)) continue;
      const def = compileTemplate(req, id, 1, await resolveBase(tx, req));
      await tx.run(
        `INSERT INTO job_templates (id, version, name, category, description, source, definition, builtin, created_at, created_by, deleted_at)
         VALUES (?, 1, ?, ?, ?, ?, ?, 1, ?, 'builtin', NULL) ON CONFLICT (id, version) DO NOTHING`,
        [id, def.name, def.category, def.description, JSON.stringify(req), JSON.stringify(def), now],
      );
      added.push(id);
    }
  }
  return added;
}
