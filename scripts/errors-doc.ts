/** Prints docs/errors.md from the one error table (src/core/errors.ts): `node scripts/errors-doc.ts > docs/errors.md`. */
import { ERROR_CODES } from '../src/core/errors.ts';

export function renderErrorsDoc(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, e]) => `| \`${code}\` | ${e.status} | ${e.description} |`);
  return [
    '# Error codes',
    '',
    'Every error the API returns has this shape, with a stable `code` from the table below (generated from `src/core/errors.ts`; a test keeps them in sync). A retired code is never reused.',
    '',
    '```json',
    '{ "error": { "code": "VALIDATION_FAILED", "message": "resources.cpu_cores: must be >= 0", "field": "resources.cpu_cores" } }',
    '```',
    '',
    '| code | HTTP | meaning |',
    '|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

if (import.meta.main) process.stdout.write(renderErrorsDoc());
