/**
 * A job request (POST /jobs, one entry of /jobs/batch) to a JobSpec: rendered from its template
 * when it names one, else validated as a plain command/handler job; then its dependencies.
 */
import type { JobSpec } from '../core/types.ts';
import { validationError } from '../core/errors.ts';
import { normalizeJobSpec, type JobRequest } from '../core/jobSpec.ts';
import { renderTemplate, type TemplateSource } from './render.ts';

export async function resolveJobRequest(source: TemplateSource, req: JobRequest, prefix = ''): Promise<JobSpec> {
  const { template, parameters, depends_on, dependencies, dependency_type, ...rest } = req;
  let spec: JobSpec;
  if (template !== undefined) {
    if (rest.command !== undefined || rest.handler !== undefined) {
      throw validationError(`${prefix}${rest.command !== undefined ? 'command' : 'handler'}`, `a job from template '${template}' runs the template's command; give either template or command/handler`);
    }
    spec = await renderTemplate(source, template, parameters ?? {}, rest, prefix);
  } else {
    if (rest.template_version !== undefined) throw validationError(`${prefix}template_version`, 'needs `template`');
    spec = normalizeJobSpec(req, prefix);
  }
  if (depends_on !== undefined && dependencies !== undefined) {
    throw validationError(`${prefix}dependencies`, 'give depends_on or dependencies (the same list), not both');
  }
  const upstream = depends_on ?? dependencies ?? [];
  if (upstream.length > 0) {
    spec.depends_on = upstream;
    spec.dependency_type = dependency_type ?? 'all_complete';
  } else if (dependency_type !== undefined) {
    spec.dependency_type = null;
  }
  return spec;
}
