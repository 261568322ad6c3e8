/**
 * The simulator's inputs: a trace (JSONL, one job per line) and a cluster (YAML).
 *
 * Trace line — required: `submit_ms` (virtual time the job is submitted, ms), `duration_ms` (how
 * long it really runs). Optional: `id` (default `j<line>`), `tenant` ('default'), `priority`
 * ('normal'), `cpu_cores` (1), `memory_gb` (0), `gpu_count` (0), `nodes` (1, gang size; the
 * resources are per node), `expected_duration_ms` (the estimate the scheduler sees; null/absent =
 * unknown), `preemptible` (true), `queue_key` ('' = command jobs). Example:
 *   {"id":"j1","submit_ms":0,"tenant":"acme","priority":"high","cpu_cores":4,"memory_gb":16,"gpu_count":1,"duration_ms":60000,"expected_duration_ms":90000}
 *
 * Cluster YAML:
 *   workers:            # groups of identical workers
 *     - name: gpu       # ids are <name>-<n>
 *       count: 4
 *       cpu_cores: 32
 *       memory_gb: 256
 *       gpu_count: 8
 *       slots: 64       # jobs at once (default 1000)
 *   tenants:            # missing tenants: unlimited quota, weight 1
 *     - id: acme
 *       cohort: research
 *       weight: 2
 *       quota: { cpu_cores: 64, gpu_count: 8 }          # nominal; absent resource = unlimited
 *       borrowing_limit: { gpu_count: 8 }
 *       lending_limit: { gpu_count: 4 }
 *       max_running: 100
 *       paused: false
 *       allowed_priorities: [critical, high, normal, low]
 *   policy: { half_life_ms: 3600000, aging_step_ms: 1800000, max_wait_ms: 86400000 }   # PolicyConfig overrides
 *   preempt_grace_ms: 30000   # a preempted job stops this long after the decision (default 0)
 */
import { parse as parseYaml } from 'yaml';
import { PRIORITIES, type Priority } from '../core/types.ts';
import { DEFAULT_TENANT } from '../scheduler/policy/quota.ts';
import { DEFAULT_POLICY_CONFIG, RESOURCE_NAMES, type PolicyConfig, type PolicyTenant, type ResourceName } from '../scheduler/policy/types.ts';

export interface TraceJob {
  id: string;
  submit_ms: number;
  tenant: string;
  priority: Priority;
  cpu_cores: number;
  memory_gb: number;
  gpu_count: number;
  nodes: number;
  duration_ms: number;
  expected_duration_ms: number | null;
  preemptible: boolean;
  queue_key: string;
}

export interface WorkerGroup {
  name: string;
  count: number;
  cpu_cores: number;
  memory_gb: number;
  gpu_count: number;
  slots: number;
}

export interface ClusterSpec {
  workers: WorkerGroup[];
  tenants: PolicyTenant[];
  policy: PolicyConfig;
  preempt_grace_ms: number;
}

/** A trace or cluster file that cannot be used; the message names the line or field. */
export class SimInputError extends Error {}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function num(o: Obj, key: string, def: number | undefined, where: string, min = 0): number {
  const v = o[key];
  if (v === undefined || v === null) {
    if (def === undefined) throw new SimInputError(`${where}: ${key} is required`);
    return def;
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new SimInputError(`${where}: ${key} must be a number >= ${min}`);
  return v;
}

function str(o: Obj, key: string, def: string, where: string): string {
  const v = o[key];
  if (v === undefined || v === null) return def;
  if (typeof v !== 'string') throw new SimInputError(`${where}: ${key} must be a string`);
  return v;
}

function priority(o: Obj, where: string): Priority {
  const v = o.priority ?? 'normal';
  const p = v === 'urgent' ? 'critical' : v;
  if (!PRIORITIES.includes(p as Priority)) throw new SimInputError(`${where}: priority must be one of ${PRIORITIES.join(', ')}`);
  return p as Priority;
}

export function parseTrace(text: string): TraceJob[] {
  const jobs: TraceJob[] = [];
  const ids = new Set<string>();
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `trace line ${i + 1}`;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      throw new SimInputError(`${where}: not JSON`);
    }
    if (!isObj(o)) throw new SimInputError(`${where}: must be a JSON object`);
    const id = str(o, 'id', `j${i + 1}`, where);
    if (ids.has(id)) throw new SimInputError(`${where}: duplicate id ${id}`);
    ids.add(id);
    const exp = o.expected_duration_ms;
    jobs.push({
      id,
      submit_ms: num(o, 'submit_ms', undefined, where),
      tenant: str(o, 'tenant', 'default', where),
      priority: priority(o, where),
      cpu_cores: num(o, 'cpu_cores', 1, where),
      memory_gb: num(o, 'memory_gb', 0, where),
      gpu_count: Math.round(num(o, 'gpu_count', 0, where)),
      nodes: Math.round(num(o, 'nodes', 1, where, 1)),
      duration_ms: num(o, 'duration_ms', undefined, where),
      expected_duration_ms: exp === undefined || exp === null ? null : num(o, 'expected_duration_ms', undefined, where),
      preemptible: o.preemptible === undefined ? true : o.preemptible === true,
      queue_key: str(o, 'queue_key', '', where),
    });
  });
  jobs.sort((a, b) => a.submit_ms - b.submit_ms);
  return jobs;
}

export function formatTrace(jobs: readonly TraceJob[]): string {
  return jobs.map((j) => JSON.stringify(j)).join('\n') + '\n';
}

function resourceMap(v: unknown, where: string): Partial<Record<ResourceName, number>> {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw new SimInputError(`${where} must be a map of ${RESOURCE_NAMES.join(', ')}`);
  const out: Partial<Record<ResourceName, number>> = {};
  for (const [k, x] of Object.entries(v)) {
    if (!(RESOURCE_NAMES as readonly string[]).includes(k)) throw new SimInputError(`${where}.${k}: unknown resource (use ${RESOURCE_NAMES.join(', ')})`);
    if (typeof x !== 'number' || x < 0) throw new SimInputError(`${where}.${k} must be a number >= 0`);
    out[k as ResourceName] = x;
  }
  return out;
}

function parseTenant(o: unknown, i: number): PolicyTenant {
  const where = `cluster tenants[${i}]`;
  if (!isObj(o)) throw new SimInputError(`${where} must be a map`);
  const id = str(o, 'id', '', where);
  if (id === '') throw new SimInputError(`${where}: id is required`);
  const t = DEFAULT_TENANT(id);
  const nominal = resourceMap(o.quota, `${where}.quota`);
  const borrow = resourceMap(o.borrowing_limit, `${where}.borrowing_limit`);
  const lend = resourceMap(o.lending_limit, `${where}.lending_limit`);
  for (const r of RESOURCE_NAMES) t.quota[r] = { nominal: nominal[r] ?? Infinity, borrowing_limit: borrow[r] ?? null, lending_limit: lend[r] ?? null };
  const cohort = o.cohort;
  if (cohort !== undefined && cohort !== null && typeof cohort !== 'string') throw new SimInputError(`${where}.cohort must be a string`);
  t.cohort = (cohort as string | undefined) ?? null;
  t.weight = num(o, 'weight', 1, where, 1e-6);
  t.max_running = o.max_running === undefined || o.max_running === null ? null : num(o, 'max_running', 0, where);
  t.paused = o.paused === true;
  if (o.allowed_priorities !== undefined) {
    const a = o.allowed_priorities;
    if (!Array.isArray(a) || a.some((p) => !PRIORITIES.includes(p as Priority))) throw new SimInputError(`${where}.allowed_priorities must be a list of ${PRIORITIES.join(', ')}`);
    t.allowed_priorities = a as Priority[];
  }
  return t;
}

export function parseCluster(text: string): ClusterSpec {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new SimInputError(`cluster: not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (!isObj(doc)) throw new SimInputError('cluster: must be a YAML map with `workers`');
  if (!Array.isArray(doc.workers) || doc.workers.length === 0) throw new SimInputError('cluster: workers must be a non-empty list');
  const workers = doc.workers.map((w, i): WorkerGroup => {
    const where = `cluster workers[${i}]`;
    if (!isObj(w)) throw new SimInputError(`${where} must be a map`);
    return {
      name: str(w, 'name', `w${i}`, where),
      count: Math.round(num(w, 'count', 1, where, 1)),
      cpu_cores: num(w, 'cpu_cores', undefined, where),
      memory_gb: num(w, 'memory_gb', 0, where),
      gpu_count: Math.round(num(w, 'gpu_count', 0, where)),
      slots: Math.round(num(w, 'slots', 1000, where, 1)),
    };
  });
  const tenants = (Array.isArray(doc.tenants) ? doc.tenants : []).map(parseTenant);
  const policy: PolicyConfig = { ...DEFAULT_POLICY_CONFIG, explain: 'none' };
  if (doc.policy !== undefined) {
    if (!isObj(doc.policy)) throw new SimInputError('cluster: policy must be a map');
    for (const [k, v] of Object.entries(doc.policy)) {
      if (!(k in policy) || k === 'explain') throw new SimInputError(`cluster policy.${k}: unknown setting`);
      if (typeof v !== typeof (policy as unknown as Obj)[k]) throw new SimInputError(`cluster policy.${k}: must be a ${typeof (policy as unknown as Obj)[k]}`);
      (policy as unknown as Obj)[k] = v;
    }
  }
  return { workers, tenants, policy, preempt_grace_ms: num(doc, 'preempt_grace_ms', 0, 'cluster') };
}

/** Cluster YAML text for a spec (used by `gantry simulate generate`). */
export function formatCluster(c: { workers: WorkerGroup[]; tenants: { id: string; cohort?: string; weight?: number; quota?: Partial<Record<ResourceName, number>>; borrowing_limit?: Partial<Record<ResourceName, number>> }[]; preempt_grace_ms?: number }): string {
  const lines: string[] = ['workers:'];
  for (const w of c.workers) lines.push(`  - { name: ${w.name}, count: ${w.count}, cpu_cores: ${w.cpu_cores}, memory_gb: ${w.memory_gb}, gpu_count: ${w.gpu_count}, slots: ${w.slots} }`);
  if (c.tenants.length > 0) lines.push('tenants:');
  const map = (m: Partial<Record<ResourceName, number>>) => `{ ${Object.entries(m).map(([k, v]) => `${k}: ${v}`).join(', ')} }`;
  for (const t of c.tenants) {
    const parts = [`id: ${t.id}`];
    if (t.cohort) parts.push(`cohort: ${t.cohort}`);
    if (t.weight !== undefined) parts.push(`weight: ${t.weight}`);
    if (t.quota) parts.push(`quota: ${map(t.quota)}`);
    if (t.borrowing_limit) parts.push(`borrowing_limit: ${map(t.borrowing_limit)}`);
    lines.push(`  - { ${parts.join(', ')} }`);
  }
  if (c.preempt_grace_ms !== undefined) lines.push(`preempt_grace_ms: ${c.preempt_grace_ms}`);
  return lines.join('\n') + '\n';
}
