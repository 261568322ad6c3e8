// Shared by the iris steps: read the step's parameters, report outputs, a seeded RNG.
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The step's rendered parameters (Gantry passes them as JSON in GANTRY_PARAMS). */
export function params() {
  return JSON.parse(process.env.GANTRY_PARAMS ?? '{}');
}

/** A line Gantry reads as this step's outputs; later steps use them as {{ steps.<id>.outputs.<key> }}. */
export function output(obj) {
  console.log(`::output ${JSON.stringify(obj)}`);
}

/** Where this run keeps its files. */
export function workDir(p) {
  const dir = p.work_dir || join(tmpdir(), 'gantry-iris', p.run_id || 'local');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** mulberry32: a small deterministic RNG so a seed gives the same split and forest. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
