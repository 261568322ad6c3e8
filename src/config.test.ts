import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileServerConfig } from './config.ts';

describe('server config: leases and breakers', () => {
  it('defaults detect a lost worker within 10 s: lease 5 s, heartbeat 1 s; breakers at 5 failures, 30 s open', () => {
    const c = compileServerConfig({}, {});
    assert.equal(c.lease_timeout_ms, 5000);
    assert.equal(c.heartbeat_interval_ms, 1000);
    assert.equal(c.breaker_threshold, 5);
    assert.equal(c.breaker_open_ms, 30_000);
    assert.equal(c.breaker_command_queue, false);
  });

  it('reads lease, heartbeat and breaker settings from the environment', () => {
    const c = compileServerConfig({}, { GANTRY_LEASE_TIMEOUT_MS: '3000', GANTRY_HEARTBEAT_MS: '500', GANTRY_BREAKER_THRESHOLD: '0', GANTRY_BREAKER_COMMAND_QUEUE: '1' });
    assert.deepEqual([c.lease_timeout_ms, c.heartbeat_interval_ms, c.breaker_threshold, c.breaker_command_queue], [3000, 500, 0, true]);
    assert.equal(compileServerConfig({}, { GANTRY_LEASE_TIMEOUT_MS: '800' }).heartbeat_interval_ms, 400, 'a short lease gets a heartbeat of half of it');
  });

  it('refuses a heartbeat that does not fit twice into the lease', () => {
    assert.throws(() => compileServerConfig({}, { GANTRY_LEASE_TIMEOUT_MS: '2000', GANTRY_HEARTBEAT_MS: '1500' }), /GANTRY_HEARTBEAT_MS \(1500\) must be at most half of GANTRY_LEASE_TIMEOUT_MS \(2000\)/);
    assert.throws(() => compileServerConfig({}, { GANTRY_BREAKER_THRESHOLD: '-1' }), /GANTRY_BREAKER_THRESHOLD/);
  });
});
