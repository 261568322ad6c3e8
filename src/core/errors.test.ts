import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderErrorsDoc } from '../../scripts/errors-doc.ts';
import { ERROR_CODES, GantryError } from './errors.ts';

test('docs/errors.md matches the error table (regenerate: node scripts/errors-doc.ts > docs/errors.md)', () => {
  assert.equal(readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8'), renderErrorsDoc());
});

test('every code has a 4xx/5xx status and a GantryError carries it', () => {
  for (const [code, e] of Object.entries(ERROR_CODES)) {
    assert.ok(e.status >= 400 && e.status < 600, code);
    const err = new GantryError(code as keyof typeof ERROR_CODES, 'x');
    assert.equal(err.status, e.status);
    assert.deepEqual(err.toJSON(), { error: { code, message: 'x' } });
  }
});
