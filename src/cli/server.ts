/**
 * Long-running commands: `up` (server + local worker on SQLite), `server` (API and scheduler
 * only) and `worker` (a process worker on this machine). Server code is imported only here and
 * only when one of these runs, so client commands start fast.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { compileServerConfig, type ServerConfig } from '../config.ts';
import type { RunningServer } from '../server/run.ts';
import { fields, num, out } from './output.ts';
import { count, labelList, nonNegative, positiveInteger } from './parse.ts';
import { CliError, EXIT, globals, type Session } from './session.ts';

interface ServerOptions {
  port?: string;
  host?: string;
  database?: string;
}

interface CapacityOptions {
  cpu?: number;
  memoryGb?: number;
  gpus?: number;
  slots?: number;
}

function serverConfig(cmd: Command, o: ServerOptions): ServerConfig {
  try {
    return compileServerConfig({ dataDir: globals(cmd).dataDir, database: o.database, port: o.port, host: o.host });
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.USAGE);
  }
}

function addServerOptions(cmd: Command): Command {
  return cmd
    .option('--port <port>', 'API port, 0 for any free one (default 8084, env GANTRY_PORT)')
    .option('--host <address>', 'listen address (default 127.0.0.1, env GANTRY_HOST)')
    .option('--database <url>', 'postgres://… or a SQLite file (default <data-dir>/gantry.db, env GANTRY_DATABASE)');
}

function addCapacityOptions(cmd: Command, what: string): Command {
  return cmd
    .option('--cpu <cores>', `CPU cores ${what} offers (default: all)`, nonNegative)
    .option('--memory-gb <gb>', `memory in GB ${what} offers (default: all)`, nonNegative)
    .option('--gpus <n>', `GPUs ${what} offers (default: nvidia-smi count)`, count)
    .option('--slots <n>', 'jobs at once, whatever their resources (default 64)', positiveInteger);
}

function capacity(o: CapacityOptions): { cpu_cores?: number; memory_gb?: number; gpu_count?: number; slots?: number } {
  return { cpu_cores: o.cpu, memory_gb: o.memoryGb, gpu_count: o.gpus, slots: o.slots };
}

/** Resolves on the first SIGINT or SIGTERM; a second one gives up on the clean shutdown. */
function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`${sig} again: exiting without a clean shutdown\n`);
        process.exit(EXIT.FAILURE);
      }
      stopping = true;
      resolve(sig);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

function hidePassword(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

function announce(server: RunningServer, config: ServerConfig): void {
  const tokenFile = join(config.data_dir, 'admin-token');
  const lines: [string, string | null][] = [['Gantry API', server.url]];
  if (server.admin_token) {
    lines.push(['Admin token', `${server.admin_token} (first start; written to ${tokenFile}, mode 0600)`]);
  }
  lines.push(['Token file', existsSync(tokenFile) ? tokenFile : `none in ${config.data_dir} (the admin token was shown when this database was first used)`]);
  lines.push(['Database', hidePassword(config.database)]);
  lines.push(['Local worker', server.worker?.id ?? null]);
  out(fields(lines));
  out('Stop with Ctrl-C or SIGTERM.');
}

async function serve(cmd: Command, o: ServerOptions, localWorker: CapacityOptions | null): Promise<void> {
  const config = serverConfig(cmd, o);
  (await import('../server/heap.ts')).prepareServerProcess(config.database);
  // Listening before the server exists means a signal during start-up still ends in a clean close.
  const stop = stopSignal();
  const { startServer } = await import('../server/run.ts');
  const server = await startServer({
    config,
    local_worker: localWorker ? { ...capacity(localWorker), onError: (err) => process.stderr.write(`local worker: ${err.message}\n`) } : false,
  });
  announce(server, config);
  const sig = await stop;
  out(`${sig}: shutting down`);
  await server.close();
}

export function serverCommands(program: Command, session: Session): void {
  const up = program
    .command('up')
    .summary('run a server with a local worker (SQLite in --data-dir)')
    .description('Run the API, the scheduler and a process worker in one process. The first start creates an admin token and writes it to <data-dir>/admin-token; the CLI finds it there.');
  addCapacityOptions(addServerOptions(up), 'the local worker')
    .action(async (o: ServerOptions & CapacityOptions, cmd: Command) => serve(cmd, o, o));

  const server = program
    .command('server')
    .summary('run the API and scheduler only (workers connect with `gantry worker`)');
  addServerOptions(server)
    .action(async (o: ServerOptions, cmd: Command) => serve(cmd, o, null));

  const worker = program
    .command('worker')
    .summary('run a process worker on this machine')
    .description('Register this machine with a Gantry server and run the command jobs it assigns. On SIGTERM, running jobs get --grace seconds to finish.');
  addCapacityOptions(worker, 'this worker')
    .option('--labels <k=v,...>', 'labels jobs can be placed by', labelList)
    .option('--name <name>', 'worker name (default: host:pid)')
    .option('--grace <seconds>', 'on SIGTERM, how long running jobs may finish before they are stopped and returned to the queue', nonNegative, 30)
    .option('--non-retryable-exit-code <code>', 'a job exiting with this code fails for good, without retries (a job\'s own retry_policy.non_retryable_exit_code also applies)', count)
    .option('--preempt-grace <seconds>', 'SIGTERM→SIGKILL time of a preempted job that sets no grace_period (its checkpoint window)', nonNegative, 30)
    .action(async (o: CapacityOptions & { labels?: Record<string, string>; name?: string; grace: number; nonRetryableExitCode?: number; preemptGrace: number }, cmd: Command) => {
      const { server: url, token } = session.resolve(cmd);
      const stop = stopSignal();
      const { startAgent } = await import('../worker/agent.ts');
      const agent = await startAgent({
        server: url, token, name: o.name, labels: o.labels, ...capacity(o), non_retryable_exit_code: o.nonRetryableExitCode ?? null,
        preempt_grace_ms: o.preemptGrace * 1000,
        onError: (err) => process.stderr.write(`worker: ${err.message}\n`),
      });
      const c = agent.capacity;
      out(`Gantry worker ${agent.id} connected to ${url.join(', ')} (cpu ${num(c.cpu_cores)}, memory ${num(c.memory_gb)} GB, gpus ${c.gpu_count}, slots ${c.slots})`);
      const sig = await stop;
      out(`${sig}: stopping; running jobs get ${o.grace}s to finish`);
      await agent.loop.stop(o.grace * 1000);
    });
}
