import type { DescMessage } from "@bufbuild/protobuf";
import type { BackoffOptions } from "../internal/backoff.js";
import type { Defaults } from "../internal/options.js";
import type { BackoffDecider } from "../process/backoff.js";
import type { DeadLetterOptions } from "../process/options.js";

/** Options for `ensureWorkflow`: what is stored on the engine. */
export interface EnsureWorkflowOptions {
  /**
   * How long a task's handler may run before its task is given to another
   * worker (the task consumers' processing timeout). Running handlers ping,
   * so this is how long a worker that died holds a task.
   * @default 30_000
   */
  readonly processingTimeoutMs?: number;
  /**
   * How long a run's state and task events are kept after its last change
   * (the run finishing, for a finished run). A run that waits longer than
   * this for an event expires too.
   * @default 604_800_000 (7 days)
   */
  readonly retainMs?: number;
  /**
   * How many tasks of one type may be handed out and not finished at once,
   * across workers (each task consumer's `maxUnsettledEvents`). A delayed
   * task counts from its first delivery until it has run, so this also
   * bounds the delayed tasks of one type waiting at once: beyond it, tasks
   * of that type wait until delays pass.
   * @default 10_000
   */
  readonly maxUnsettledTasks?: number;
  /**
   * Replicas of the stream and the bucket.
   * @default 1
   */
  readonly replicas?: number;
  /**
   * Where the stream keeps task events.
   * @default "file"
   */
  readonly storage?: "file" | "memory";
  /** Cancels the call. */
  readonly signal?: AbortSignal;
}

/** The defaults of {@link EnsureWorkflowOptions}. */
export const ensureWorkflowDefaults: Defaults<EnsureWorkflowOptions> = Object.freeze({
  processingTimeoutMs: 30_000,
  retainMs: 7 * 86_400_000,
  maxUnsettledTasks: 10_000,
  replicas: 1,
  storage: "file",
  signal: undefined,
});

/** Options for `runWorkflow`, in the vocabulary of `process`. */
export interface RunWorkflowOptions {
  /**
   * How many task handlers run at once in this worker, across its task types.
   * @default 1
   */
  readonly concurrency?: number;
  /**
   * Run only these task types (so that services share a workflow, each
   * running its own tasks).
   * @default every task type the workflow has a handler for
   */
  readonly tasks?: readonly DescMessage[];
  /**
   * Attempts at a task before it fails (and with it the run). A
   * `PermanentError` fails it at once.
   * @default 5
   */
  readonly maxAttempts?: number;
  /**
   * The delay before a failed task is tried again.
   * @default from 1 s, doubling up to 5 min, up to 20 % jitter
   */
  readonly backoff?: BackoffOptions | BackoffDecider;
  /**
   * Publish the task events of failed tasks to a dead-letter subject, as
   * `process` does.
   * @default none: failed tasks' events are rejected permanently
   */
  readonly deadLetter?: DeadLetterOptions;
  /**
   * How long `close()` waits for running handlers before giving their tasks
   * back.
   * @default 10_000
   */
  readonly closeTimeoutMs?: number;
  /** Aborting stops the worker, as `close()` does. */
  readonly signal?: AbortSignal;
}

/** The defaults of {@link RunWorkflowOptions}. */
export const runWorkflowDefaults: Defaults<RunWorkflowOptions> = Object.freeze({
  concurrency: 1,
  tasks: undefined,
  maxAttempts: 5,
  backoff: undefined,
  deadLetter: undefined,
  closeTimeoutMs: 10_000,
  signal: undefined,
});

/** Options for `startWorkflow`. */
export interface StartWorkflowOptions {
  /**
   * The run's id (1-255 characters of `A-Z a-z 0-9 _ . : -`). Starting a run
   * whose id exists does not start another: it returns the existing run (and
   * publishes its first task again if that was never published), so a start
   * that failed can simply be called again.
   * @default a random UUID
   */
  readonly runId?: string;
  /** Cancels the call. The run may still have been started. */
  readonly signal?: AbortSignal;
}

/** The defaults of {@link StartWorkflowOptions}. */
export const startWorkflowDefaults: Defaults<StartWorkflowOptions> = Object.freeze({
  runId: undefined,
  signal: undefined,
});
