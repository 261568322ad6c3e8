import type { FastifyInstance } from 'fastify';
import { CHANNELS } from '../../store/store.ts';
import type { ServerContext } from '../context.ts';
import { checkpointWire } from '../views.ts';
import { checkpointSchema, jobIdParams } from '../schemas.ts';

/**
 * `POST /jobs/{id}/checkpoint` for callers outside the worker protocol (a process that holds a
 * token): the attempt id is the fencing token, so only the running attempt can save. Workers
 * relay checkpoints of their own jobs in their report batches instead.
 */
export function checkpointRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { store } = ctx;
  app.post<{ Params: { id: string }; Body: { attempt_id: string; data?: unknown; file?: string } }>(
    '/api/v1/jobs/:id/checkpoint',
    { schema: { params: jobIdParams, body: checkpointSchema, summary: 'Save a running job\'s checkpoint (small JSON or a file reference)' } },
    async (req, reply) => {
      const saved = await store.saveCheckpoint(req.params.id, req.body.attempt_id, { data: req.body.data ?? null, file: req.body.file ?? null });
      store.notify(CHANNELS.JOB, req.params.id);
      return reply.status(201).send({ job_id: req.params.id, checkpoint: checkpointWire(saved) });
    },
  );
}
