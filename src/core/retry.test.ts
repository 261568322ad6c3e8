import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_RETRY_POLICY, hasAttemptsLeft, retryDelaySeconds } from './retry.ts';
import type { RetryPolicy } from './types.ts';

const policy = (p: Partial<RetryPolicy>): RetryPolicy => ({ ...DEFAULT_RETRY_POLICY, jitter: 0, ...p });
const noJitter = () => 0.5; // must not matter when jitter is 0

describe('retry backoff', () => {
  it('fixed backoff waits retry_delay every time', () => {
    const p = policy({ backoff: 'fixed', retry_delay: 7, max_delay: 1000 });
    for (const n of [1, 2, 3, 10]) assert.equal(retryDelaySeconds(p, n, noJitter), 7, `retry ${n}`);
  });

  it('exponential backoff doubles from retry_delay: 2, 4, 8, 16', () => {
    const p = policy({ backoff: 'exponential', retry_delay: 2, max_delay: 1000 });
    assert.deepEqual([1, 2, 3, 4].map((n) => retryDelaySeconds(p, n, noJitter)), [2, 4, 8, 16]);
  });

  it('exponential backoff is capped at max_delay', () => {
    const p = policy({ backoff: 'exponential', retry_delay: 1, max_delay: 10 });
    assert.deepEqual([1, 2, 3, 4, 5, 6, 30].map((n) => retryDelaySeconds(p, n, noJitter)), [1, 2, 4, 8, 10, 10, 10]);
  });

  it('the first retry waits retry_delay even if called with retry 0', () => {
    const p = policy({ backoff: 'exponential', retry_delay: 3, max_delay: 100 });
    assert.equal(retryDelaySeconds(p, 0, noJitter), 3);
  });

  it('jitter takes at most its share of the delay away, using the injected random', () => {
    const p = policy({ backoff: 'fixed', retry_delay: 10, jitter: 0.5 });
    assert.equal(retryDelaySeconds(p, 1, () => 0), 10, 'random 0: the full delay');
    assert.equal(retryDelaySeconds(p, 1, () => 1), 5, 'random 1: half the delay taken away');
    assert.equal(retryDelaySeconds(p, 1, () => 0.5), 7.5);
    for (let i = 0; i < 200; i++) {
      const d = retryDelaySeconds(p, 1);
      assert.ok(d >= 5 && d <= 10, `delay ${d} within [5, 10]`);
    }
  });

  it('jitter applies after the cap and is clamped to [0, 1]', () => {
    const capped = policy({ backoff: 'exponential', retry_delay: 1, max_delay: 8, jitter: 0.25 });
    assert.equal(retryDelaySeconds(capped, 10, () => 1), 6, '8s cap, a quarter taken away');
    const full = policy({ backoff: 'fixed', retry_delay: 4, jitter: 5 });
    assert.equal(retryDelaySeconds(full, 1, () => 1), 0, 'jitter above 1 acts as full jitter');
    const none = policy({ backoff: 'fixed', retry_delay: 4, jitter: -2 });
    assert.equal(retryDelaySeconds(none, 1, () => 1), 4, 'negative jitter acts as none');
  });

  it('hasAttemptsLeft counts the first run: max_attempts 3 allows runs 1, 2 and 3', () => {
    const p = policy({ max_attempts: 3 });
    assert.equal(hasAttemptsLeft(p, 0), true);
    assert.equal(hasAttemptsLeft(p, 1), true);
    assert.equal(hasAttemptsLeft(p, 2), true);
    assert.equal(hasAttemptsLeft(p, 3), false);
    assert.equal(hasAttemptsLeft(p, 4), false);
    assert.equal(hasAttemptsLeft(policy({ max_attempts: 1 }), 1), false, 'max_attempts 1: never retried');
  });

  it('defaults: 3 attempts, exponential from 1s, capped at 300s, no jitter', () => {
    assert.deepEqual(DEFAULT_RETRY_POLICY, { max_attempts: 3, retry_delay: 1, backoff: 'exponential', max_delay: 300, jitter: 0 });
  });
});
