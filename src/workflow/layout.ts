/**
 * Where a workflow lives on the engine: the names of its stream, bucket,
 * subjects and consumers, and the headers its task events carry. Every
 * service that shares a workflow derives the same names from its name.
 *
 * @module
 */

/** The stream holding a workflow's task events. */
export function streamName(workflow: string): string {
  return `WORKFLOW_${workflow}`;
}

/** The key-value bucket holding a workflow's runs. */
export function bucketName(workflow: string): string {
  return `WORKFLOW_${workflow}`;
}

/** The subjects of a workflow's stream. */
export function streamSubject(workflow: string): string {
  return `workflow.${workflow}.>`;
}

/** The subject task events of `type` (a full Protobuf type name) are published to. */
export function taskSubject(workflow: string, type: string): string {
  return `workflow.${workflow}.task.${type}`;
}

/** The durable consumer that delivers task events of `type` (dots become dashes: consumer names have none). */
export function consumerName(type: string): string {
  return type.replaceAll(".", "-");
}

/** Headers a task event carries. */
export const WorkflowHeaders = {
  /** The run the task belongs to. */
  Run: "WS-Workflow-Run",
  /** The task's id within its run. */
  Task: "WS-Workflow-Task",
} as const;

/** The idempotency key a task event is published with: the same for every publication of the task. */
export function taskKey(workflow: string, runId: string, taskId: string): string {
  return `workflow:${workflow}:${runId}:${taskId}`;
}
