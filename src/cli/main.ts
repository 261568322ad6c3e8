/**
 * The `gantry` command line. Every failure ends as one line on stderr and an exit code:
 * 2 for usage and validation errors, 1 for everything else (a job's own exit code with
 * `submit --wait`). No stack traces: a trace is for a bug in Gantry, and then the server log has it.
 */
import { Command, CommanderError, Option } from 'commander';
import { GantryApiError } from '../client/http.ts';
import { jobCommands } from './jobs.ts';
import { OUTPUT_FORMATS } from './output.ts';
import { queueCommands } from './queue.ts';
import { serverCommands } from './server.ts';
import { CliError, EXIT, Session } from './session.ts';
import { simulateCommands } from './simulate.ts';
import { workerCommands } from './workers.ts';
import { breakerCommands } from './breakers.ts';
import { workflowCommands } from './workflows.ts';
import { jobTypeCommands } from './jobTypes.ts';
import { templateCommands } from './templates.ts';
import { tenantCommands, whyCommand } from './tenants.ts';
import { simulateExportCommand } from './simulateExport.ts';

/** API codes that mean the request itself was wrong, as opposed to the state of the system. */
const USAGE_CODES: ReadonlySet<string> = new Set(['VALIDATION_FAILED', 'INVALID_JSON', 'INVALID_CURSOR']);

export function buildProgram(session: Session): Command {
  const program = new Command('gantry')
    .description('Gantry job orchestrator: run a server, submit and manage jobs.')
    .version(process.env.npm_package_version ?? '0.1.0', '-V, --version')
    .option('--server <url[,url…]>', 'Gantry API URL, or several servers on one database separated by commas, tried in turn (env GANTRY_URL; default: the local `gantry up`)')
    .option('--token <token>', 'API token (env GANTRY_TOKEN; default: <data-dir>/admin-token)')
    .option('--data-dir <dir>', 'data dir of `gantry up` (env GANTRY_DATA_DIR; default ./.gantry)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .exitOverride()
    .configureOutput({
      // Commander adds "(Did you mean …?)" on a line of its own; keep every error to one line.
      outputError: (str, write) => write(str.replace(/\n(?=.)/g, ' ')),
    });
  serverCommands(program, session);
  jobCommands(program, session);
  queueCommands(program, session);
  workerCommands(program, session);
  breakerCommands(program, session);
  workflowCommands(program, session);
  jobTypeCommands(program, session);
  templateCommands(program, session);
  simulateCommands(program, session);
  tenantCommands(program, session);
  whyCommand(program, session);
  // After the simulator's `simulate` command: `export` joins that group.
  simulateExportCommand(program, session);
  // Subcommands inherit exitOverride and output settings only when created after them, so set them again.
  const configure = (cmd: Command) => {
    cmd.exitOverride().configureOutput({ outputError: (str, write) => write(str.replace(/\n(?=.)/g, ' ')) });
    cmd.commands.forEach(configure);
  };
  program.commands.forEach(configure);
  return program;
}

/** The one line a failure prints, and the exit code it ends with. */
export function describeError(err: unknown, session: Session): { line: string | null; exitCode: number } {
  if (err instanceof CommanderError) {
    // Commander has printed its message (or the help) already.
    const quiet = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help';
    return { line: null, exitCode: quiet ? err.exitCode : EXIT.USAGE };
  }
  if (err instanceof CliError) return { line: err.message, exitCode: err.exitCode };
  if (err instanceof GantryApiError) {
    if (err.code === 'UNREACHABLE') return { line: err.message, exitCode: EXIT.FAILURE };
    let line = `${err.code} ${err.message}`;
    if (err.code === 'UNAUTHORIZED' && session.config) line += ` (token from ${session.config.token_source})`;
    return { line, exitCode: USAGE_CODES.has(err.code) ? EXIT.USAGE : EXIT.FAILURE };
  }
  const e = err as Error & { cause?: { code?: string; message?: string } };
  // A fetch outside GantryClient.request (the log stream) fails with a bare TypeError.
  if (e instanceof TypeError && e.message === 'fetch failed' && session.config) {
    return { line: `cannot reach Gantry at ${session.config.server}: ${e.cause?.code ?? e.cause?.message ?? 'connection failed'}`, exitCode: EXIT.FAILURE };
  }
  return { line: e?.message ?? String(err), exitCode: EXIT.FAILURE };
}

/** Exits once stdout has taken everything written to it, so piped output is never cut short. */
function exit(code: number): void {
  process.stdout.write('', () => process.exit(code));
}

export async function main(argv: readonly string[]): Promise<void> {
  // `gantry list | head` closes the pipe early; that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.OK);
  });
  const session = new Session();
  let code: number;
  try {
    await buildProgram(session).parseAsync(argv as string[]);
    code = session.exitCode;
  } catch (err) {
    const { line, exitCode } = describeError(err, session);
    if (line !== null) process.stderr.write(`error: ${line.replace(/\s*\n\s*/g, ' ')}\n`);
    code = exitCode;
  }
  exit(code);
}
