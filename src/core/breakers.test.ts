import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { admission, afterAttempt, BreakerGate, breakerKeysOf, breakerPendingReason, closedBreaker, type Breaker } from './breakers.ts';

const opts = { threshold: 3, open_ms: 1000, command_queue: false };

function run(outcomes: boolean[], start: Breaker = closedBreaker('handler:x', 0)): Breaker {
  return outcomes.reduce((b, ok, i) => afterAttempt(b, ok, ok ? null : `boom ${i}`, opts, 100 * (i + 1)), start);
}

describe('circuit breaker state machine', () => {
  it('stays closed below the threshold; a success resets the count', () => {
    assert.equal(run([false, false]).state, 'closed');
    assert.equal(run([false, false, true, false, false]).state, 'closed');
    assert.equal(run([false, false, true, false, false]).consecutive_failures, 2);
  });

  it('opens at N consecutive failures, with a probe time open_ms later', () => {
    const b = run([false, false, false]);
    assert.equal(b.state, 'open');
    assert.equal(b.opened_at, 300);
    assert.equal(b.probe_at, 1300);
    assert.equal(b.last_error, 'boom 2');
    assert.equal(admission(b, 1299), 'wait');
    assert.equal(admission(b, 1300), 'probe');
  });

  it('a failed probe reopens at once; a successful one closes', () => {
    const half: Breaker = { ...run([false, false, false]), state: 'half_open', probe_job_id: 'job_1', probe_at: 5000 };
    const again = afterAttempt(half, false, 'still down', opts, 2000);
    assert.equal(again.state, 'open');
    assert.equal(again.probe_at, 3000);
    assert.equal(afterAttempt(half, true, null, opts, 2000).state, 'closed');
  });

  it('a half-open breaker whose probe job left its worker (cancelled, lost) lets the next probe go at once', () => {
    const half: Breaker = { ...run([false, false, false]), state: 'half_open', probe_job_id: 'job_1', probe_at: 5000 };
    assert.equal(admission({ ...half, probe_live: true }, 2000), 'wait');
    assert.equal(admission({ ...half, probe_live: false }, 2000), 'probe');
  });

  it('the gate lets exactly one probe through per key and holds open keys', () => {
    const open = { ...run([false, false, false]), key: 'handler:x' };
    const gate = new BreakerGate([open], 2000);
    assert.equal(gate.blocks('handler:x'), false);
    assert.equal(gate.admit('job_a', ['handler:x']), true);
    assert.equal(gate.admit('job_b', ['handler:x']), false);
    assert.equal(gate.admit('job_c', ['handler:y']), true);
    assert.deepEqual(gate.probes(new Set(['job_a'])), [{ key: 'handler:x', job_id: 'job_a' }]);
    assert.equal(new BreakerGate([open], 500).blocks('handler:x'), true);
  });

  it('keys: handler queue, template, and the command queue only when asked', () => {
    assert.deepEqual(breakerKeysOf({ handler: 'send', template: 'nightly' }), ['handler:send', 'template:nightly']);
    assert.deepEqual(breakerKeysOf({ handler: null }, { command_queue: false }), []);
    assert.deepEqual(breakerKeysOf({ handler: null, template: 't' }, { command_queue: true }), ['executor:process', 'template:t']);
  });

  it('the pending reason names the key, the failures and the probe time', () => {
    const b = run([false, false, false]);
    assert.equal(breakerPendingReason([b], 500), `circuit open for handler:x after 3 consecutive failures, probe at ${new Date(1300).toISOString()}`);
    assert.equal(breakerPendingReason([closedBreaker('handler:x', 0)], 500), null);
  });
});
