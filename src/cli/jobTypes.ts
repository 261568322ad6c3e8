/**
 * Seed 000's manage-jobs commands, one per built-in job type, each a job from its template
 * (templates/*.json): create-ml, create-etl, create-scan, create-billing, create-backup.
 * `--flag=value` and `--flag value` both work. The printed execution id is the job id
 * (`gantry status --execution-id=…`).
 */
import { Option, type Command } from 'commander';
import { GantryApiError, type JobRequest, type Priority } from '../client/http.ts';
import { estimate } from './output.ts';
import { collectParam, integer, number, positiveInteger } from './parse.ts';
import { showSubmitted } from './jobs.ts';
import { CliError, EXIT, globals, type Session } from './session.ts';

interface CommonOptions {
  tenant?: string;
  priority?: string;
  name?: string;
  cpu?: number;
  memoryGb?: number;
  gpus?: number;
  param?: Record<string, unknown>;
  wait?: boolean;
}

interface JobType {
  command: string;
  template: string;
  summary: string;
  /** Options of this type, added to the common ones. */
  options: Option[];
  /** Parameters from this type's options. */
  parameters(o: Record<string, unknown>): Record<string, unknown>;
  /** Which flag sets a parameter, so an API error can name what the user typed. */
  flags: Record<string, string>;
}

const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

/** `kafka:user-events` → {type: kafka, <key>: user-events}. */
function endpoint(key: string) {
  return (v: string) => {
    const i = v.indexOf(':');
    return i > 0 ? { type: v.slice(0, i), [key]: v.slice(i + 1) } : { type: v };
  };
}

const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

const TYPES: JobType[] = [
  {
    command: 'create-ml', template: 'ml_training', summary: 'ML training job (GPU): data preparation, training, evaluation, storage',
    options: [
      new Option('--model <name>', 'model to train (e.g. transformer)'),
      new Option('--algorithm <name>', 'transformer, random_forest, svm, logistic_regression, xgboost, cnn'),
      new Option('--dataset <path>', 'training data'),
      new Option('--epochs <n>', 'training epochs').argParser(positiveInteger),
      new Option('--tier <tier>', 'tenant tier: enterprise_plus, enterprise, premium, standard'),
    ],
    parameters: (o) => defined({ model: o.model, algorithm: o.algorithm, dataset_path: o.dataset, max_epochs: o.epochs, tier: o.tier }),
    flags: { model: '--model', algorithm: '--algorithm', dataset_path: '--dataset', max_epochs: '--epochs', tier: '--tier' },
  },
  {
    command: 'create-etl', template: 'data_etl', summary: 'data ETL job: extract, transform, load',
    options: [
      new Option('--source <type:topic>', 'source, e.g. kafka:user-events').argParser(endpoint('topic')),
      new Option('--destination <type:table>', 'destination, e.g. delta_lake:user_events_processed').argParser(endpoint('table_name')),
      new Option('--script <file>', 'transformation script'),
    ],
    parameters: (o) => defined({ source_config: o.source, destination_config: o.destination, transformation_script: o.script }),
    flags: { source_config: '--source', destination_config: '--destination', transformation_script: '--script' },
  },
  {
    command: 'create-scan', template: 'security_scan', summary: 'security and compliance scan',
    options: [
      new Option('--frameworks <list>', 'comma-separated: PCI-DSS,SOX,GDPR,HIPAA,ISO27001').argParser(list),
      new Option('--scan-type <type>', 'full, quick, compliance, vulnerability'),
      new Option('--target <what>', 'what to scan (default: the tenant)'),
    ],
    parameters: (o) => defined({ frameworks: o.frameworks, scan_type: o.scanType, target: o.target }),
    flags: { frameworks: '--frameworks', scan_type: '--scan-type', target: '--target' },
  },
  {
    command: 'create-billing', template: 'billing_report', summary: 'billing report for a period',
    options: [
      new Option('--period <period>', 'daily, weekly, monthly, quarterly, yearly'),
      new Option('--currency <code>', 'USD, EUR, GBP, JPY'),
    ],
    parameters: (o) => defined({ period: o.period, currency: o.currency }),
    flags: { period: '--period', currency: '--currency' },
  },
  {
    command: 'create-backup', template: 'tenant_backup', summary: 'tenant backup: snapshot and verify',
    options: [
      new Option('--type <type>', 'full, incremental, differential'),
      new Option('--no-encryption', 'store the backup unencrypted'),
      new Option('--retention-days <n>', 'keep the backup this long').argParser(positiveInteger),
    ],
    parameters: (o) => defined({ type: o.type, encryption: o.encryption === false ? false : undefined, retention_days: o.retentionDays }),
    flags: { type: '--type', encryption: '--no-encryption', retention_days: '--retention-days' },
  },
];

const COMMON_FLAGS: Readonly<Record<string, string>> = {
  tenant: '--tenant', priority: '--priority', name: '--name',
  'resources.cpu_cores': '--cpu', 'resources.memory_gb': '--memory-gb', 'resources.gpu_count': '--gpus',
};

export function jobTypeCommands(program: Command, session: Session): void {
  for (const t of TYPES) {
    const cmd = program
      .command(t.command)
      .summary(t.summary)
      .description(`${t.summary}. A job from template ${t.template} (gantry templates show ${t.template}).`)
      .option('--tenant <tenant>', 'tenant (default: default)')
      .option('--priority <level>', 'emergency, critical, high, normal, low (default: the template\'s)')
      .option('--name <name>', 'job name');
    for (const o of t.options) cmd.addOption(o);
    cmd
      .option('--cpu <cores>', 'CPU cores (default: the template\'s)', number)
      .option('--memory-gb <gb>', 'memory in GB (default: the template\'s)', number)
      .option('--gpus <n>', 'GPUs (default: the template\'s)', integer)
      .option('--param <key=value>', 'any other template parameter; JSON values parse (repeatable)', collectParam)
      .option('--wait', 'show state changes until the job ends; exit with its exit code')
      .action(async (o: CommonOptions & Record<string, unknown>, c: Command) => {
        const { output } = globals(c);
        const resources = defined({ cpu_cores: o.cpu, memory_gb: o.memoryGb, gpu_count: o.gpus });
        const body: JobRequest = {
          template: t.template,
          parameters: { ...o.param, ...t.parameters(o) },
          ...(o.tenant ? { tenant: o.tenant } : {}),
          ...(o.priority ? { priority: o.priority as Priority } : {}),
          ...(o.name ? { name: o.name } : {}),
          ...(Object.keys(resources).length ? { resources } : {}),
        };
        const client = session.connect(c);
        let res;
        try {
          res = await client.submit(body);
        } catch (err) {
          if (err instanceof GantryApiError && err.field) {
            const p = err.field.startsWith('parameters.') ? err.field.slice('parameters.'.length) : null;
            const flag = p ? (t.flags[p] ?? `--param ${p}=…`) : COMMON_FLAGS[err.field];
            if (flag) throw new CliError(`${err.code} ${err.message} (${flag})`, EXIT.USAGE);
          }
          throw err;
        }
        await showSubmitted(session, client, output, o.wait, res, [
          ['execution_id', res.job_id],
          ['status', res.status],
          ['template', `${res.template} v${res.template_version}`],
          ['queue_position', res.queue_position === null ? '-' : String(res.queue_position)],
          ['estimated_start', estimate(res.estimated_start_time)],
        ], { execution_id: res.job_id, ...res });
      });
  }
}
