import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fill, placeholders } from './placeholders.ts';

describe('template placeholders', () => {
  it('fills names and dotted paths; numbers as text, objects as JSON, missing as empty', () => {
    const vars = { model: 'transformer', epochs: 3, hp: { depth: 5 }, tags: ['a'], on: true };
    assert.equal(fill('train {{ model }} for {{epochs}} epochs', vars), 'train transformer for 3 epochs');
    assert.equal(fill('--depth={{ hp.depth }} --hp={{ hp }} {{ tags }} {{ on }}', vars), '--depth=5 --hp={"depth":5} ["a"] true');
    assert.equal(fill('[{{ missing }}] [{{ hp.nope }}] [{{ model.length }}]', vars), '[] [] []');
  });
  it('is plain substitution: expressions and inherited properties are not evaluated', () => {
    assert.equal(fill('{{ 1 + 1 }} {{ constructor }} {{ model.toString }}', { model: 'x' }), '{{ 1 + 1 }}  ');
    assert.deepEqual(placeholders('a {{ x }} b {{ y.z }} {{ not valid }}'), ['x', 'y.z']);
  });
});
