import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SharedRead } from './sharedRead.ts';

/** A read that takes `ms` per call and answers how many calls there were. */
function counted(ms: number) {
  let calls = 0;
  const read = new SharedRead(async () => {
    calls++;
    const t = performance.now();
    while (performance.now() - t < ms) await new Promise((r) => setTimeout(r, 1));
    return calls;
  }, { slow_ms: 10, min_age_ms: 1000, age_factor: 10 });
  return { read };
}

describe('SharedRead', () => {
  it('callers during a read share it; a quick read is made afresh for each later caller', async () => {
    const c = counted(0);
    const [a, b] = await Promise.all([c.read.get(1000), c.read.get(1001)]);
    assert.deepEqual(a, { value: 1, at: 1000 });
    assert.deepEqual(b, a);
    assert.deepEqual(await c.read.get(1002), { value: 2, at: 1002 });
  });

  it('a slow read is reused while at most 1 s or ten times its duration old, then read again', async () => {
    const c = counted(15);
    assert.deepEqual(await c.read.get(10_000), { value: 1, at: 10_000 });
    assert.deepEqual(await c.read.get(10_900), { value: 1, at: 10_000 }, 'reused, and says when it was read');
    assert.deepEqual(await c.read.get(11_001), { value: 2, at: 11_001 }, 'older than 1 s (and than 10 × 15 ms)');
  });

  it('a read slower than 100 ms is reused for ten times its duration', async () => {
    const c = counted(150);
    await c.read.get(0);
    assert.deepEqual(await c.read.get(1400), { value: 1, at: 0 });
    assert.deepEqual((await c.read.get(3000)).value, 2);
  });

  it('a failed read is not kept: the next caller reads again', async () => {
    let fail = true;
    const r = new SharedRead(async () => {
      await new Promise((res) => setTimeout(res, 15));
      if (fail) throw new Error('database gone');
      return 'ok';
    }, { slow_ms: 10, min_age_ms: 1000, age_factor: 10 });
    await assert.rejects(r.get(0), /database gone/);
    fail = false;
    assert.deepEqual(await r.get(1), { value: 'ok', at: 1 });
  });
});
