import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ACTIVE_STATES, FINAL_STATES, TRANSITIONS, assertTransition, canTransition, isFinal } from './states.ts';
import { GantryError } from './errors.ts';
import { JOB_STATES, type JobState } from './types.ts';

/** The lifecycle a user reads in the docs, written out edge by edge. */
const LEGAL: readonly [JobState, JobState][] = [
  ['SUBMITTED', 'QUEUED'], ['SUBMITTED', 'CANCELLED'],
  ['QUEUED', 'SCHEDULED'], ['QUEUED', 'CANCELLED'], ['QUEUED', 'QUEUED'], ['QUEUED', 'SUBMITTED'],
  ['SCHEDULED', 'RUNNING'], ['SCHEDULED', 'QUEUED'], ['SCHEDULED', 'CANCELLED'],
  ['RUNNING', 'COMPLETED'], ['RUNNING', 'FAILED'], ['RUNNING', 'TIMEOUT'], ['RUNNING', 'RETRYING'],
  ['RUNNING', 'PAUSED'], ['RUNNING', 'CANCELLED'], ['RUNNING', 'QUEUED'],
  ['PAUSED', 'RUNNING'], ['PAUSED', 'CANCELLED'], ['PAUSED', 'QUEUED'], ['PAUSED', 'FAILED'],
  ['PAUSED', 'TIMEOUT'], ['PAUSED', 'RETRYING'], ['PAUSED', 'COMPLETED'],
  ['RETRYING', 'QUEUED'], ['RETRYING', 'CANCELLED'],
  ['TIMEOUT', 'RETRYING'], ['TIMEOUT', 'QUEUED'],
  ['FAILED', 'QUEUED'],
  ['CANCELLED', 'QUEUED'],
];

function expectRefused(from: JobState, to: JobState): void {
  assert.throws(
    () => assertTransition('job_x', from, to),
    (err: unknown) => {
      assert.ok(err instanceof GantryError, 'a GantryError');
      assert.equal(err.code, 'INVALID_TRANSITION');
      assert.equal(err.status, 409);
      assert.match(err.message, new RegExp(`job_x cannot go from ${from} to ${to}`));
      assert.deepEqual(err.details, { job_id: 'job_x', from, to });
      return true;
    },
    `${from} → ${to} must be refused`,
  );
}

describe('job state transitions', () => {
  it('allows every transition of the documented lifecycle', () => {
    for (const [from, to] of LEGAL) {
      assert.equal(canTransition(from, to), true, `${from} → ${to}`);
      assert.doesNotThrow(() => assertTransition('job_x', from, to), `${from} → ${to}`);
    }
  });

  it('allows nothing beyond the documented lifecycle (exhaustive over all state pairs)', () => {
    const legal = new Set(LEGAL.map(([f, t]) => `${f}>${t}`));
    let refused = 0;
    for (const from of JOB_STATES) {
      for (const to of JOB_STATES) {
        if (legal.has(`${from}>${to}`)) continue;
        assert.equal(canTransition(from, to), false, `${from} → ${to} must not be allowed`);
        refused++;
      }
    }
    assert.equal(refused, JOB_STATES.length ** 2 - LEGAL.length);
  });

  it('refuses illegal moves with INVALID_TRANSITION (HTTP 409)', () => {
    const sample: [JobState, JobState][] = [
      ['QUEUED', 'RUNNING'], // must be scheduled first
      ['QUEUED', 'COMPLETED'],
      ['SUBMITTED', 'RUNNING'],
      ['SCHEDULED', 'COMPLETED'],
      ['RETRYING', 'RUNNING'],
      ['FAILED', 'RUNNING'],
      ['FAILED', 'CANCELLED'],
      ['CANCELLED', 'RUNNING'],
      ['TIMEOUT', 'COMPLETED'],
      ['RUNNING', 'SUBMITTED'],
    ];
    for (const [from, to] of sample) expectRefused(from, to);
  });

  it('COMPLETED is terminal: no transition out of it, not even a manual retry', () => {
    assert.deepEqual(TRANSITIONS.COMPLETED, []);
    for (const to of JOB_STATES) expectRefused('COMPLETED', to);
    assert.equal(isFinal('COMPLETED'), true);
  });

  it('final and active state sets match the lifecycle', () => {
    assert.deepEqual([...FINAL_STATES].sort(), ['CANCELLED', 'COMPLETED', 'FAILED', 'TIMEOUT']);
    assert.deepEqual([...ACTIVE_STATES].sort(), ['PAUSED', 'RUNNING', 'SCHEDULED']);
    for (const s of ['QUEUED', 'RUNNING', 'RETRYING', 'SUBMITTED'] as const) assert.equal(isFinal(s), false, s);
    // Every final state except COMPLETED can be retried by hand.
    for (const s of ['FAILED', 'TIMEOUT', 'CANCELLED'] as const) assert.equal(canTransition(s, 'QUEUED'), true, s);
  });
});
