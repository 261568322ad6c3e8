/** `gantry/client`: the typed REST client and the SDK Worker. */
export { GantryClient, GantryApiError, FINAL_STATUSES } from './http.ts';
export type {
  ClientOptions, JobRequest, SubmitResponse, JobView, JobEventView, AttemptView, LogChunkView, QueueStatus, WorkerView, ListJobsQuery,
  Priority, JobStatus, GangInfo, GangMemberView,
} from './http.ts';
export { Worker, type WorkerOptions } from './worker.ts';
export { NonRetryableError, type Handler, type HandlerJob } from '../executors/handler.ts';
export { workflow, workflows, schedules, WorkflowBuilder } from './workflows.ts';
export type { WorkflowDefinition, StepOptions, TriggerRule, RunView, RunStepView, StepStatus, RunStatus, ScheduleRequest, WorkflowCreated } from './workflows.ts';
