import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideDependencies, type Upstream } from './dependencies.ts';
import type { DependencyType, JobState } from './types.ts';

const ups = (...states: JobState[]): Upstream[] => states.map((state, i) => ({ id: `j${i}`, state }));
const verdict = (type: DependencyType, ...states: JobState[]) => decideDependencies(type, ups(...states)).verdict;

describe('decideDependencies', () => {
  it('all_complete: every one COMPLETED; any other ending means never', () => {
    assert.equal(verdict('all_complete', 'COMPLETED', 'RUNNING'), 'wait');
    assert.equal(verdict('all_complete', 'COMPLETED', 'COMPLETED'), 'run');
    assert.equal(verdict('all_complete', 'FAILED', 'RUNNING'), 'never');
    assert.equal(verdict('all_complete', 'CANCELLED', 'COMPLETED'), 'never');
    assert.equal(verdict('all_complete', 'RETRYING', 'COMPLETED'), 'wait', 'a failure that will be retried is not final');
    assert.match(decideDependencies('all_complete', ups('COMPLETED', 'TIMEOUT')).reason, /dependency j1 ended TIMEOUT/);
  });
  it('any_complete: one COMPLETED; never when all ended without one', () => {
    assert.equal(verdict('any_complete', 'FAILED', 'QUEUED'), 'wait');
    assert.equal(verdict('any_complete', 'FAILED', 'COMPLETED'), 'run');
    assert.equal(verdict('any_complete', 'QUEUED', 'COMPLETED'), 'run');
    assert.equal(verdict('any_complete', 'FAILED', 'CANCELLED'), 'never');
  });
  it('all_done: every one ended, whatever the outcome', () => {
    assert.equal(verdict('all_done', 'FAILED', 'PAUSED'), 'wait');
    assert.equal(verdict('all_done', 'FAILED', 'CANCELLED', 'TIMEOUT', 'COMPLETED'), 'run');
  });
  it('any_failed: one FAILED or TIMEOUT; CANCELLED is not a failure', () => {
    assert.equal(verdict('any_failed', 'COMPLETED', 'RUNNING'), 'wait');
    assert.equal(verdict('any_failed', 'TIMEOUT', 'RUNNING'), 'run');
    assert.equal(verdict('any_failed', 'COMPLETED', 'CANCELLED'), 'never');
  });
  it('names what it waits for', () => {
    const v = decideDependencies('all_complete', ups('COMPLETED', 'QUEUED', 'RUNNING'));
    assert.deepEqual(v.waiting_for, ['j1', 'j2']);
    assert.equal(v.reason, 'waiting for 2 of 3 dependencies (all_complete): j1, j2');
  });
});
