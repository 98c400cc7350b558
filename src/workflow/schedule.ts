import { fromBinary } from "@bufbuild/protobuf";
import { validationError } from "../errors.js";
import { publish } from "../publish/publish.js";
import type { Runtime } from "../runtime.js";
import type { WorkflowTable } from "./definition.js";
import { taskKey, taskSubject, WorkflowHeaders } from "./layout.js";
import { fromBase64, type RunState } from "./run-state.js";

/**
 * Publishes the task events of `ids` (scheduled tasks of `run`), each under
 * its task's idempotency key, so that publishing a task again (after a
 * redelivery, or a start called twice) does not store it twice within the
 * stream's deduplication window; a copy stored later still runs once, as a
 * worker skips a task its run has already finished. Transient failures are
 * retried for up to 20 s.
 */
export async function publishTasks(
  rt: Runtime,
  table: WorkflowTable,
  run: RunState,
  ids: readonly string[],
  signal?: AbortSignal,
): Promise<void> {
  await Promise.all(
    ids.map((id) => {
      const task = run.tasks[id];
      if (task === undefined) return Promise.resolve();
      const schema = table.tasks.get(task.type)?.schema;
      if (schema === undefined) {
        throw validationError(
          "workflow",
          `task ${id} of run "${run.runId}" is a ${task.type}, which workflow "${table.name}" does not declare here: ` +
            "declare every task type in every service, with .task(Schema)",
        );
      }
      return publish(rt, taskSubject(table.name, task.type), schema, fromBinary(schema, fromBase64(task.data)), {
        idempotencyKey: taskKey(table.name, run.runId, id),
        headers: { [WorkflowHeaders.Run]: run.runId, [WorkflowHeaders.Task]: id },
        retry: true,
        ...(signal === undefined ? {} : { signal }),
      });
    }),
  );
}
