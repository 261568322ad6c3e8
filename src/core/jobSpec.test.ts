import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_RESOURCES, normalizeJobSpec } from './jobSpec.ts';
import { DEFAULT_RETRY_POLICY } from './retry.ts';
import { GantryError } from './errors.ts';

function validationFailure(fn: () => unknown, field: string): GantryError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof GantryError, 'throws a GantryError');
  assert.equal(caught.code, 'VALIDATION_FAILED');
  assert.equal(caught.status, 400);
  assert.equal(caught.details?.field, field);
  assert.ok(caught.message.startsWith(`${field}: `), `message names ${field}: ${caught.message}`);
  return caught;
}

describe('normalizeJobSpec', () => {
  it('fills every default for a bare command job', () => {
    const s = normalizeJobSpec({ command: ['/usr/bin/python3', 'train.py'] });
    assert.deepEqual(s, {
      name: 'python3',
      type: 'command',
      tenant: 'default',
      priority: 'normal',
      resources: DEFAULT_RESOURCES,
      kind: 'command',
      command: ['/usr/bin/python3', 'train.py'],
      handler: null,
      env: {},
      working_dir: null,
      timeout: null,
      retry_policy: DEFAULT_RETRY_POLICY,
      labels: {},
      parameters: {},
      idempotency_key: null,
      expected_duration: null,
      preemptible: true,
      grace_period: null,
      nodes: 1,
    });
    assert.deepEqual(DEFAULT_RESOURCES, { cpu_cores: 1, memory_gb: 0.25, gpu_count: 0, storage_gb: 0 });
  });

  it('a handler job is named and typed after its handler', () => {
    const s = normalizeJobSpec({ handler: 'resize-image', parameters: { w: 10 } });
    assert.equal(s.kind, 'handler');
    assert.equal(s.handler, 'resize-image');
    assert.equal(s.command, null);
    assert.equal(s.name, 'resize-image');
    assert.equal(s.type, 'resize-image');
    assert.deepEqual(s.parameters, { w: 10 });
  });

  it('keeps given values and merges partial resources and retry policy over the defaults', () => {
    const s = normalizeJobSpec({
      command: ['echo'], name: 'n', type: 't', tenant: 'acme', priority: 'HIGH', timeout: 30,
      resources: { gpu_count: 2 }, retry_policy: { max_attempts: 5 }, labels: { a: 'b' }, idempotency_key: 'k1',
    });
    assert.equal(s.name, 'n');
    assert.equal(s.type, 't');
    assert.equal(s.tenant, 'acme');
    assert.equal(s.priority, 'high', 'priority names are case-insensitive');
    assert.equal(s.timeout, 30);
    assert.deepEqual(s.resources, { ...DEFAULT_RESOURCES, gpu_count: 2 });
    assert.deepEqual(s.retry_policy, { ...DEFAULT_RETRY_POLICY, max_attempts: 5 });
    assert.deepEqual(s.labels, { a: 'b' });
    assert.equal(s.idempotency_key, 'k1');
  });

  it('accepts `urgent` as an alias of critical', () => {
    assert.equal(normalizeJobSpec({ command: ['x'], priority: 'urgent' }).priority, 'critical');
    for (const p of ['emergency', 'critical', 'high', 'normal', 'low'] as const) {
      assert.equal(normalizeJobSpec({ command: ['x'], priority: p }).priority, p);
    }
  });

  it('rejects an unknown priority, naming the field', () => {
    const err = validationFailure(() => normalizeJobSpec({ command: ['x'], priority: 'asap' }, 'jobs[1].'), 'jobs[1].priority');
    assert.match(err.message, /asap/);
  });

  it('needs exactly one of command or handler; the error names the field with its prefix', () => {
    validationFailure(() => normalizeJobSpec({}), 'command');
    validationFailure(() => normalizeJobSpec({ command: ['x'], handler: 'h' }), 'command');
    const err = validationFailure(() => normalizeJobSpec({ command: ['x'], handler: 'h' }, 'jobs[2].'), 'jobs[2].command');
    assert.match(err.message, /exactly one of `command`.*or `handler`/);
  });

  it('raises max_delay to retry_delay so backoff never shrinks below the first delay', () => {
    const s = normalizeJobSpec({ command: ['x'], retry_policy: { retry_delay: 60, max_delay: 5 } });
    assert.equal(s.retry_policy.max_delay, 60);
  });

  it('does not share default objects between jobs', () => {
    const a = normalizeJobSpec({ command: ['x'] });
    const b = normalizeJobSpec({ command: ['y'] });
    a.resources.cpu_cores = 99;
    a.retry_policy.max_attempts = 99;
    assert.equal(b.resources.cpu_cores, 1);
    assert.equal(b.retry_policy.max_attempts, 3);
    assert.equal(DEFAULT_RESOURCES.cpu_cores, 1);
    assert.equal(DEFAULT_RETRY_POLICY.max_attempts, 3);
  });
});
