import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evalCondition, parseExpr, renderValue, ExprError } from './expr.ts';
import { findCycle, normalizeWorkflow } from './definition.ts';
import { outputsOf, triggerVerdict } from './planner.ts';

const ctx = {
  params: { mode: 'fast', n: 3, tags: ['a', 'b'], nested: { k: 'v' } },
  steps: { train: { state: 'SUCCEEDED', outputs: { accuracy: 0.93, model_path: '/m/1', list: [1, 2] } } },
};

test('conditions: comparisons, and/or/not, in, literals, paths', () => {
  const cases: [string, boolean][] = [
    ["params.mode == 'fast'", true],
    ['params.mode != "fast"', false],
    ['steps.train.outputs.accuracy >= 0.9 and params.n < 5', true],
    ['steps.train.outputs.accuracy > 0.95 or params.n == 3', true],
    ['not (params.n == 3)', false],
    ['!false && true', true],
    ["'a' in params.tags", true],
    ["'z' in params.tags", false],
    ["'k' in params.nested", true],
    ['params.missing == null', true],
    ['params.missing.deeper == null', true],
    ['steps.train.outputs.list[1] == 2', true],
    ["params['mode'] == 'fast'", true],
    ['params.n > "2"', false],
    ['[1, 2] == steps.train.outputs.list', true],
    ['-1 < 0', true],
    ['params.tags', true],
    ['params.empty', false],
  ];
  for (const [src, want] of cases) assert.equal(evalCondition(src, ctx), want, src);
});

test('no way out of the sandbox: prototypes and globals are just missing paths', () => {
  assert.equal(evalCondition('params.constructor == null', ctx), true);
  assert.equal(evalCondition("params['__proto__'] == null", ctx), true);
  assert.equal(evalCondition('process == null', { ...ctx, process: undefined }), true);
  for (const bad of ['params.x ==', 'a +', '1 2', "'open", 'params.(x)', 'foo()', 'x = 1']) {
    assert.throws(() => parseExpr(bad), ExprError, bad);
  }
});

test('rendering keeps the type of a whole reference and interpolates inside text', () => {
  assert.deepEqual(renderValue({ a: '{{ steps.train.outputs.accuracy }}', b: 'acc={{ steps.train.outputs.accuracy }}', c: ['{{ params.tags }}'], d: 5 }, ctx), {
    a: 0.93, b: 'acc=0.93', c: [['a', 'b']], d: 5,
  });
  assert.equal(renderValue('{{ params.nested }}!', ctx), '{"k":"v"}!');
});

test('trigger rules over upstream states', () => {
  assert.equal(triggerVerdict('all_success', ['SUCCEEDED', 'RUNNING']), 'wait');
  assert.equal(triggerVerdict('all_success', ['FAILED', 'RUNNING']), 'upstream_failed');
  assert.equal(triggerVerdict('one_success', ['SUCCEEDED', 'RUNNING']), 'run');
  assert.equal(triggerVerdict('one_failed', ['CANCELLED', 'PENDING']), 'run');
  assert.equal(triggerVerdict('all_failed', ['UPSTREAM_FAILED', 'FAILED']), 'run');
  assert.equal(triggerVerdict('none_failed', ['SKIPPED', 'SUCCEEDED']), 'run');
  assert.equal(triggerVerdict('always', ['PENDING']), 'run');
});

test('cycles are found and named in run order; outputs parse from ::output lines', () => {
  assert.deepEqual(findCycle([{ step_id: 'a', depends_on: ['b'] }, { step_id: 'b', depends_on: ['a'] }]), ['a', 'b', 'a']);
  assert.equal(findCycle([{ step_id: 'a', depends_on: [] }, { step_id: 'b', depends_on: ['a'] }]), null);
  assert.throws(
    () => normalizeWorkflow({ workflow_name: 'w', steps: [{ step_id: 'x', handler: 'h', depends_on: ['x'] }] }),
    /cycle: x → x/,
  );
  assert.deepEqual(outputsOf(null, 'hello\n::output {"a": 1}\n::output not json\n::output {"b": 2}\n'), { a: 1, b: 2 });
  assert.deepEqual(outputsOf(7, null), { value: 7 });
});
