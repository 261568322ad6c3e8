import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { GantryError } from '../core/errors.ts';

/** `/jobs/3/resources/cpu_cores` → `jobs[3].resources.cpu_cores`. */
function fieldFromPath(path: string, missing?: string): string {
  const parts = path.split('/').filter(Boolean);
  if (missing) parts.push(missing);
  return parts.map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`)).join('') || 'body';
}

/** Maps every error to `{error: {code, message, field?}}` with the status from the one table. */
export function toGantryError(err: FastifyError | Error): GantryError {
  if (err instanceof GantryError) return err;
  const fe = err as FastifyError & { validation?: { instancePath: string; message?: string; params?: Record<string, unknown>; keyword: string }[]; validationContext?: string };
  if (fe.validation && fe.validation.length > 0) {
    const v = fe.validation[0]!;
    const extra = v.keyword === 'additionalProperties' ? String(v.params?.additionalProperty) : v.keyword === 'required' ? String(v.params?.missingProperty) : undefined;
    const base = fe.validationContext && fe.validationContext !== 'body' ? `${fe.validationContext}.` : '';
    const field = base + fieldFromPath(v.instancePath, extra);
    const message =
      v.keyword === 'additionalProperties' ? 'unknown field' : v.keyword === 'required' ? 'is required' : (v.message ?? 'is invalid');
    return new GantryError('VALIDATION_FAILED', `${field}: ${message}`, { field });
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GantryError('INVALID_JSON', `body is not valid JSON: ${fe.message}`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GantryError('PAYLOAD_TOO_LARGE', 'body is over the size limit');
    case 'FST_ERR_BAD_URL':
      return new GantryError('VALIDATION_FAILED', 'path: not a valid URL (bad percent-encoding)', { field: 'path' });
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new GantryError('VALIDATION_FAILED', 'path: a path parameter is too long', { field: 'path' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GantryError('UNSUPPORTED_MEDIA_TYPE', `unsupported body: ${fe.message}`);
  }
  if (err instanceof SyntaxError || fe.statusCode === 400) return new GantryError('INVALID_JSON', `bad request: ${err.message}`);
  if (fe.statusCode === 413) return new GantryError('PAYLOAD_TOO_LARGE', 'body is over the size limit');
  if (fe.statusCode === 415) return new GantryError('UNSUPPORTED_MEDIA_TYPE', err.message);
  // PostgreSQL refuses NUL characters in text and jsonb (SQLite stores them): bad input, not a server fault.
  if (['22021', '22P05'].includes(String((err as { code?: unknown }).code))) {
    return new GantryError('VALIDATION_FAILED', 'text contains a NUL character (\\u0000), which cannot be stored');
  }
  if (isConnectionError(err)) return new GantryError('STORE_UNAVAILABLE', `database unavailable: ${err.message}`);
  return new GantryError('INTERNAL', 'internal error');
}

function isConnectionError(err: Error): boolean {
  const code = (err as { code?: string }).code ?? '';
  return ['ECONNREFUSED', 'ECONNRESET', '57P01', '57P03', '08006', '08001', 'SQLITE_BUSY'].includes(code) || /Connection terminated/.test(err.message);
}

export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const g = toGantryError(err);
  if (g.code === 'INTERNAL') req.log.error({ err }, 'unhandled error');
  void reply.status(g.status).send(g.toJSON());
}
