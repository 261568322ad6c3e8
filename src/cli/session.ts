import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { compileClientConfig, type ClientConfig } from '../config.ts';
import { GantryClient } from '../client/http.ts';
import { ServerListError } from '../client/servers.ts';
import type { OutputFormat } from './output.ts';

/** A failure the CLI explains in one line; `exitCode` 2 marks a usage or validation error. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
} as const;

/** The program-wide options, accepted before or after the command name. */
export interface GlobalOptions {
  server?: string;
  token?: string;
  dataDir?: string;
  output: OutputFormat;
}

export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/**
 * State of one CLI run: where it connected and with which token (so an UNAUTHORIZED error can
 * say where the token came from), and the exit code a command asks for.
 */
export class Session {
  config: ClientConfig | null = null;
  exitCode: number = EXIT.OK;

  /** Servers and token from --server/--token, else GANTRY_URL/GANTRY_TOKEN, else the local `gantry up`. */
  resolve(cmd: Command): { server: string[]; token: string } {
    const g = globals(cmd);
    let config: ClientConfig;
    try {
      config = compileClientConfig({ server: g.server, token: g.token, dataDir: g.dataDir }, readOrNull);
    } catch (err) {
      if (err instanceof ServerListError) throw new CliError(err.message, EXIT.USAGE);
      throw err;
    }
    this.config = config;
    if (!config.token) {
      throw new CliError(
        `no API token: none given with --token or GANTRY_TOKEN, and no ${config.token_source} (start \`gantry up\` or pass --token)`,
        EXIT.USAGE,
      );
    }
    return { server: config.servers, token: config.token };
  }

  connect(cmd: Command): GantryClient {
    return new GantryClient(this.resolve(cmd));
  }
}
