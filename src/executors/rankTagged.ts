import type { JobContext } from '../client/workerLoop.ts';

/**
 * A gang member's context whose log lines start with `[rank N] `: all members write to the job's
 * one log, so each line says which member wrote it. A line split over several chunks is tagged once.
 */
export function rankTagged(ctx: JobContext, rank: number): JobContext {
  const tag = `[rank ${rank}] `;
  const atLineStart = { stdout: true, stderr: true };
  return {
    ...ctx,
    log: (stream, data) => {
      let out = '';
      for (let i = 0; i < data.length; ) {
        if (atLineStart[stream]) out += tag;
        const nl = data.indexOf('\n', i);
        if (nl < 0) {
          out += data.slice(i);
          atLineStart[stream] = false;
          break;
        }
        out += data.slice(i, nl + 1);
        atLineStart[stream] = true;
        i = nl + 1;
      }
      if (out) ctx.log(stream, out);
    },
  };
}
