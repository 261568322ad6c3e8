/** `gantry templates list|show|create|update|delete`: job templates (versioned). */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { TemplateView } from '../client/http.ts';
import { clip, fields, out, printJson, shellQuote, table } from './output.ts';
import { positiveInteger } from './parse.ts';
import { CliError, EXIT, globals, type Session } from './session.ts';

function readBody(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read template file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.USAGE);
  }
  try {
    const body = JSON.parse(text) as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('expected one JSON object');
    return body as Record<string, unknown>;
  } catch (err) {
    throw new CliError(`template file ${path} is not a JSON object: ${(err as Error).message}`, EXIT.USAGE);
  }
}

function show(t: TemplateView): void {
  const r = t.resource_requirements;
  out(fields([
    ['id', t.id],
    ['name', t.name],
    ['version', `${t.version}${t.versions.length > 1 ? ` (versions ${t.versions.join(', ')})` : ''}`],
    ['category', t.category],
    ['description', t.description || null],
    ['base_template', t.base_template ? `${t.base_template} v${t.base_version}` : null],
    ['command', t.command ? shellQuote(t.command) : null],
    ['handler', t.handler],
    ['resources', `cpu ${r.cpu_cores ?? 1}, memory ${r.memory_gb ?? 0.25} GB, gpus ${r.gpu_count ?? 0}${r.storage_gb ? `, storage ${r.storage_gb} GB` : ''}`],
    ['priority', t.priority],
    ['timeout', t.timeout === null ? null : `${t.timeout}s`],
    ['steps', t.execution_steps.length ? t.execution_steps.map((s) => `${s.step}${s.timeout ? ` (${s.timeout}s)` : ''}`).join(' → ') : null],
    ['defaults', Object.keys(t.default_parameters).length ? JSON.stringify(t.default_parameters) : null],
  ]));
  if (t.parameters.length) {
    out();
    out(table(
      ['PARAMETER', 'TYPE', 'REQUIRED', 'DEFAULT', 'OPTIONS'],
      t.parameters.map((p) => [
        p.name, p.type, p.required ? 'yes' : 'no',
        p.default === undefined ? (t.default_parameters[p.name] === undefined ? '-' : clip(JSON.stringify(t.default_parameters[p.name]), 30)) : clip(JSON.stringify(p.default), 30),
        p.options ? clip(p.options.map((o) => (typeof o === 'string' ? o : JSON.stringify(o))).join(','), 50) : '',
      ]),
    ));
  }
}

export function templateCommands(program: Command, session: Session): void {
  const templates = program.command('templates').summary('job templates: list, show, create, update, delete');
  templates
    .command('list', { isDefault: true })
    .summary('templates, latest version of each (the default)')
    .option('--category <name>', 'only this category')
    .action(async (o: { category?: string }, cmd: Command) => {
      const res = await session.connect(cmd).listTemplates(o.category);
      if (globals(cmd).output === 'json') return printJson(res);
      if (res.templates.length === 0) return out('no templates');
      out(table(
        ['ID', 'VERSION', 'CATEGORY', 'NAME', 'REQUIRED_PARAMETERS'],
        res.templates.map((t) => [t.id, String(t.version), t.category, clip(t.name, 30), t.parameters.filter((p) => p.required).map((p) => p.name).join(',') || '-']),
      ));
    });
  templates
    .command('show')
    .summary('one template with its parameters')
    .argument('<id>', 'template id')
    .option('--version <n>', 'an older version', positiveInteger)
    .action(async (id: string, o: { version?: number }, cmd: Command) => {
      const t = await session.connect(cmd).getTemplate(id, o.version);
      if (globals(cmd).output === 'json') return printJson(t);
      show(t);
    });
  templates
    .command('create')
    .summary('create a template from a JSON file (POST /api/v1/templates body)')
    .requiredOption('-f, --file <path>', 'template JSON')
    .action(async (o: { file: string }, cmd: Command) => {
      const t = await session.connect(cmd).createTemplate(readBody(o.file));
      if (globals(cmd).output === 'json') return printJson(t);
      out(t.message);
    });
  templates
    .command('update')
    .summary('new version of a template: the file\'s fields replace the current ones')
    .argument('<id>', 'template id')
    .requiredOption('-f, --file <path>', 'template JSON (fields to change)')
    .action(async (id: string, o: { file: string }, cmd: Command) => {
      const t = await session.connect(cmd).updateTemplate(id, readBody(o.file));
      if (globals(cmd).output === 'json') return printJson(t);
      out(t.message);
    });
  templates
    .command('delete')
    .summary('delete a template (jobs keep the version they ran)')
    .argument('<id>', 'template id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const res = await session.connect(cmd).deleteTemplate(id);
      if (globals(cmd).output === 'json') return printJson(res);
      out(`template ${id} deleted`);
    });
}
