import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobContext } from '../client/workerLoop.ts';
import { rankTagged } from './rankTagged.ts';

test("a gang member's log lines are tagged with its rank, once per line however the output is chunked", () => {
  const got: [string, string][] = [];
  const base = { log: (stream: 'stdout' | 'stderr', data: string) => got.push([stream, data]) } as unknown as JobContext;
  const ctx = rankTagged(base, 1);
  ctx.log('stdout', 'a\nb');
  ctx.log('stderr', 'oops\n');
  ctx.log('stdout', 'c\n\n');
  ctx.log('stdout', '');
  assert.deepEqual(got, [['stdout', '[rank 1] a\n[rank 1] b'], ['stderr', '[rank 1] oops\n'], ['stdout', 'c\n[rank 1] \n']]);
});
