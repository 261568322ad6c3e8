import type { FastifyInstance } from 'fastify';

/** How long a closing server waits for requests in flight before it cuts the rest. */
export const DRAIN_DEADLINE_MS = 10_000;

/**
 * Graceful close for the API: once `app.close()` starts, Fastify answers new requests with 503;
 * this lets the requests already in flight finish (up to `deadlineMs`) before the remaining
 * connections — idle keep-alives, followed log streams — are closed. Long-polls are answered at
 * once by their own preClose hook (src/server/routes/workers.ts). Streams (hijacked replies)
 * do not hold the close up.
 */
export function finishInFlightOnClose(app: FastifyInstance, deadlineMs = DRAIN_DEADLINE_MS): { waitOnClose(): void } {
  let inFlight = 0;
  let drained: (() => void) | null = null;
  app.addHook('onRequest', async (req, reply) => {
    inFlight++;
    let counted = true;
    const done = () => {
      if (!counted) return;
      counted = false;
      inFlight--;
      if (inFlight === 0) drained?.();
    };
    reply.raw.once('close', done);
    reply.raw.once('finish', done);
    // A follow=true log stream runs until the job ends: not a request to wait for.
    if (/\/logs\?(.*&)?follow=true/.test(req.url)) done();
  });
  return {
    /** Registers the wait; call it after the routes, so their own preClose hooks (waking long-polls) run first. */
    waitOnClose() {
      app.addHook('preClose', async () => {
        if (inFlight === 0) return;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([new Promise<void>((r) => (drained = r)), new Promise<void>((r) => (timer = setTimeout(r, deadlineMs)))]);
        clearTimeout(timer);
      });
    },
  };
}
