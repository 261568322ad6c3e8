/** `gantry tenants …`: tenants with their tier and quotas; pause/resume a tenant's queue. */
import { InvalidArgumentError, type Command } from 'commander';
import type { Priority, ResourceAmounts, TenantRequest, TenantView } from '../client/http.ts';
import { fields, num, out, printJson, table, time } from './output.ts';
import { count, number } from './parse.ts';
import { globals, type Session } from './session.ts';

/** `--quota gpu_count=8` (repeatable) → {gpu_count: 8}; resource names and ranges are checked by the API. */
function amount(value: string, previous: ResourceAmounts | undefined): ResourceAmounts {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected RESOURCE=AMOUNT (cpu_cores, memory_gb, gpu_count).');
  const n = Number(value.slice(eq + 1));
  if (value.slice(eq + 1).trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('the amount must be a number.');
  return { ...previous, [value.slice(0, eq)]: n };
}

function priorities(value: string): Priority[] {
  return value.split(',').map((p) => p.trim()).filter(Boolean) as Priority[];
}

interface SettingOptions {
  name?: string;
  tier?: string;
  cohort?: string;
  quota?: ResourceAmounts;
  borrowingLimit?: ResourceAmounts;
  lendingLimit?: ResourceAmounts;
  maxRunning?: number;
  weight?: number;
  priorities?: Priority[];
}

function withSettings(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'display name')
    .option('--tier <tier>', 'enterprise_plus, enterprise, premium, basic or free')
    .option('--cohort <name>', 'cohort whose tenants share idle quota')
    .option('--quota <resource=amount>', 'nominal quota, e.g. gpu_count=8 (repeatable)', amount)
    .option('--borrowing-limit <resource=amount>', 'most it may borrow above nominal (repeatable)', amount)
    .option('--lending-limit <resource=amount>', 'most of its idle quota others may borrow (repeatable)', amount)
    .option('--max-running <n>', 'jobs on workers at once', count)
    .option('--weight <w>', 'fair-share weight', number)
    .option('--priorities <list>', 'priorities it may use, comma-separated', priorities);
}

function body(o: SettingOptions): TenantRequest {
  const b: TenantRequest = {};
  if (o.name !== undefined) b.name = o.name;
  if (o.tier !== undefined) b.tier = o.tier;
  if (o.cohort !== undefined) b.cohort = o.cohort;
  if (o.quota !== undefined) b.quota = o.quota;
  if (o.borrowingLimit !== undefined) b.borrowing_limit = o.borrowingLimit;
  if (o.lendingLimit !== undefined) b.lending_limit = o.lendingLimit;
  if (o.maxRunning !== undefined) b.max_running_jobs = o.maxRunning;
  if (o.weight !== undefined) b.fair_share_weight = o.weight;
  if (o.priorities !== undefined) b.allowed_priorities = o.priorities;
  return b;
}

const amounts = (a: ResourceAmounts): string =>
  Object.entries(a).map(([k, v]) => `${k}=${num(v)}`).join(' ') || '-';

function show(t: TenantView): void {
  const e = t.effective;
  out(fields([
    ['tenant', t.tenant_id],
    ['name', t.name],
    ['tier', t.tier],
    ['cohort', t.cohort],
    ['queue', t.paused ? 'PAUSED (queued jobs are held)' : 'active'],
    ['running', t.load ? `${t.load.running_jobs} jobs holding ${amounts(t.load.held)}` : null],
    ['queued', t.load ? `${t.load.queued_jobs} jobs` : null],
    ['quota', amounts(e.quota)],
    ['borrowing_limit', Object.keys(e.borrowing_limit).length ? amounts(e.borrowing_limit) : 'no limit'],
    ['lending_limit', Object.keys(e.lending_limit).length ? amounts(e.lending_limit) : 'no limit'],
    ['max_running_jobs', e.max_running_jobs === null ? 'no limit' : String(e.max_running_jobs)],
    ['fair_share_weight', num(e.fair_share_weight)],
    ['allowed_priorities', e.allowed_priorities.join(', ')],
    ['updated', time(t.updated_at)],
  ]));
}

export function tenantCommands(program: Command, session: Session): void {
  const tenants = program.command('tenants').summary('tenants: tiers, quotas, fair-share weights; pause/resume a queue');
  const print = (cmd: Command, t: TenantView) => (globals(cmd).output === 'json' ? printJson(t) : show(t));

  tenants
    .command('list', { isDefault: true })
    .summary('all tenants (the default)')
    .action(async (_o: unknown, cmd: Command) => {
      const res = await session.connect(cmd).listTenants();
      if (globals(cmd).output === 'json') return printJson(res);
      if (res.tenants.length === 0) return out(`no tenants registered (jobs of unregistered tenants run under tier ${res.default_tier})`);
      out(table(
        ['TENANT', 'TIER', 'COHORT', 'QUEUE', 'QUOTA', 'MAX_RUNNING', 'WEIGHT'],
        res.tenants.map((t) => [
          t.tenant_id, t.tier, t.cohort, t.paused ? 'paused' : 'active', amounts(t.effective.quota),
          t.effective.max_running_jobs === null ? '-' : String(t.effective.max_running_jobs), num(t.effective.fair_share_weight),
        ]),
      ));
    });

  withSettings(tenants.command('create').summary('register a tenant (tier defaults apply to what is not given)').argument('<id>', 'tenant id'))
    .action(async (id: string, o: SettingOptions, cmd: Command) => print(cmd, await session.connect(cmd).createTenant({ id, ...body(o) })));

  tenants
    .command('show')
    .summary('a tenant with its effective settings')
    .argument('<id>', 'tenant id')
    .action(async (id: string, _o: unknown, cmd: Command) => print(cmd, await session.connect(cmd).getTenant(id)));

  withSettings(tenants.command('update').summary('change settings (takes effect on the next scheduling cycle)').argument('<id>', 'tenant id'))
    .option('--replace', 'settings not given go back to the tier defaults')
    .action(async (id: string, o: SettingOptions & { replace?: boolean }, cmd: Command) =>
      print(cmd, await session.connect(cmd).updateTenant(id, body(o), o.replace ?? false)));

  tenants
    .command('delete')
    .summary('delete a tenant (its jobs then run under the default tier)')
    .argument('<id>', 'tenant id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const res = await session.connect(cmd).deleteTenant(id);
      if (globals(cmd).output === 'json') return printJson(res);
      out(`tenant ${id} deleted`);
    });

  for (const action of ['pause', 'resume'] as const) {
    tenants
      .command(action)
      .summary(action === 'pause' ? "hold a tenant's queued jobs (running ones go on)" : "release a tenant's queue")
      .argument('<id>', 'tenant id')
      .action(async (id: string, _o: unknown, cmd: Command) => {
        const c = session.connect(cmd);
        const t = action === 'pause' ? await c.pauseTenant(id) : await c.resumeTenant(id);
        if (globals(cmd).output === 'json') return printJson(t);
        out(`tenant ${id} queue ${t.paused ? 'paused' : 'active'}`);
      });
  }
}

/** `gantry why ID`: why a job is not running yet. */
export function whyCommand(program: Command, session: Session): void {
  program
    .command('why')
    .summary('why a job is pending: reasons in plain words, estimated start')
    .argument('<id>', 'job id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const e = await session.connect(cmd).explain(id);
      if (globals(cmd).output === 'json') return printJson(e);
      out(fields([
        ['job', e.job_id],
        ['status', e.status],
        ['tenant', `${e.tenant.id} (tier ${e.tenant.tier}, cohort ${e.tenant.cohort}${e.tenant.paused ? ', queue paused' : ''})`],
        ['queue_position', e.queue_position === null ? null : String(e.queue_position)],
        ['estimated_start', e.estimated_start_time ? time(e.estimated_start_time) : (e.status === 'QUEUED' ? 'unknown' : null)],
      ]));
      out();
      if (e.reasons.length === 0) out(e.summary ?? 'not waiting');
      for (const r of e.reasons) out(`- ${r.text}`);
    });
}
