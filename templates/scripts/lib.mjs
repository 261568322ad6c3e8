// Shared by the built-in templates' scripts: parameters, pacing, progress and outputs.
// Plain JavaScript (no dependencies, no network) so every Gantry worker can run them.

/** The job's parameters: GANTRY_PARAMETERS (set by the template renderer), then --key=value flags. */
export function params() {
  const p = JSON.parse(process.env.GANTRY_PARAMETERS || '{}');
  for (const a of process.argv.slice(2)) {
    const m = /^--([^=]+)=(.*)$/.exec(a);
    if (m) p[m[1]] = m[2];
  }
  return p;
}

/** The step this process runs (a template's execution step), or the first argument. */
export function step() {
  return process.env.GANTRY_STEP || process.argv[2] || 'all';
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Seconds to spend per unit of work: parameter `pace_ms` (default 20 ms), so demos finish fast. */
export function pace(p) {
  const n = Number(p.pace_ms ?? 20);
  return Number.isFinite(n) && n >= 0 ? n : 20;
}

export function log(line) {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

/** A result later steps can read (workflows take `::output {json}` lines as step outputs). */
export function output(obj) {
  process.stdout.write(`::output ${JSON.stringify(obj)}\n`);
}

/** A deterministic pseudo-random generator, so a run's figures are reproducible from its parameters. */
export function rng(seedText) {
  let h = 2166136261;
  for (const c of String(seedText)) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return () => {
    h ^= h << 13;
    h ^= h >>> 17;
    h ^= h << 5;
    return ((h >>> 0) % 1_000_000) / 1_000_000;
  };
}

/** Exits non-zero with a message when `fail_step` names this step: lets tests and demos exercise failures. */
export function maybeFail(p, name) {
  if (p.fail_step && p.fail_step === name) {
    process.stderr.write(`simulated failure in ${name} (fail_step=${name})\n`);
    process.exit(3);
  }
}
