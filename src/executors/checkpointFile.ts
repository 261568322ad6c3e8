import { readFileSync, rmSync, statSync } from 'node:fs';
import type { CheckpointData } from '../client/http.ts';

/** Same limit as the server's: bigger state belongs in a file the checkpoint refers to. */
const MAX_BYTES = 64 * 1024;

/**
 * A process job's checkpoint file (`$GANTRY_CHECKPOINT_FILE`): the job writes JSON there (any
 * value) whenever it likes; the worker looks at it every
 * `poll_ms` and once more when the process ends, and relays each new version as a checkpoint.
 * Text that is not JSON is kept as a string. Write to a temp file and rename for atomic updates.
 */
export class CheckpointFile {
  readonly path: string;
  readonly #send: (c: CheckpointData) => void;
  readonly #warn: (msg: string) => void;
  #seen = '';
  #timer: NodeJS.Timeout | null = null;

  constructor(path: string, send: (c: CheckpointData) => void, warn: (msg: string) => void) {
    this.path = path;
    this.#send = send;
    this.#warn = warn;
  }

  watch(pollMs: number): void {
    this.#timer = setInterval(() => this.#look(), pollMs);
    this.#timer.unref();
  }

  /** A last look, then the file is removed. */
  finish(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#look();
    rmSync(this.path, { force: true });
  }

  #look(): void {
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.mtimeMs}:${st.size}`;
      if (stamp === this.#seen) return;
      if (st.size > MAX_BYTES) {
        this.#seen = stamp;
        this.#warn(`gantry: checkpoint file is ${st.size} bytes, over the ${MAX_BYTES}-byte limit; not saved\n`);
        return;
      }
    } catch {
      return; // not written (yet)
    }
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch {
      return;
    }
    this.#seen = stamp;
    if (text.trim() === '') return;
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
    this.#send({ data });
  }
}
