/**
 * Built-in templates: every `templates/*.json` file of this package (one template each, with its
 * `id`), stored as version 1 at server start when no template of that id exists yet.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TemplateRequest } from './definition.ts';
import { TEMPLATES_DIR } from './render.ts';

export function builtinTemplates(dir = TEMPLATES_DIR): TemplateRequest[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const t = JSON.parse(readFileSync(join(dir, f), 'utf8')) as TemplateRequest;
      if (!t.id) throw new Error(`built-in template ${f} has no id`);
      return t;
    });
}
