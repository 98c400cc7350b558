/**
 * The state of one workflow run, as stored (JSON, one key-value entry per
 * run), and the pure steps that change it. Every change is computed here
 * from the state read and written back with compare-and-set, so two workers
 * changing the same run never both win: whatever a step decides (a task's
 * requests committed, a join fired) is decided exactly once.
 *
 * @module
 */

import { ErrorCode, WindshiftError } from "../errors.js";

/** The stored format's version; a newer one is refused rather than misread. */
export const STATE_VERSION = 1;

/** Where a run stands: `completed` once no task is scheduled or running and no join waits. */
export type RunStatus = "running" | "completed" | "failed";

/** Where a task stands. `scheduled` covers waiting for its delay and for a retry. */
export type TaskStatus = "scheduled" | "running" | "completed" | "failed";

/** One task, stored. Times are epoch milliseconds on the engine's clock. */
export interface TaskRecord {
  readonly type: string;
  /** The task whose handler scheduled it (`undefined` for the first task and for join tasks). */
  readonly parent?: string;
  /** The join that fired it. */
  readonly join?: number;
  status: TaskStatus;
  attempts: number;
  readonly scheduledAt: number;
  /** Not run before this time (a delayed task). */
  readonly notBefore?: number;
  startedAt?: number;
  finishedAt?: number;
  /** The last failure's message. */
  error?: string;
  /** The task's message, base64; dropped once the task has run. */
  data?: string;
}

/** One run-scoped event, stored. The first emit of a name counts; later ones are ignored. */
export interface EventRecord {
  /** The message type, when the event carries data. */
  readonly type?: string;
  /** The data, base64. */
  readonly data?: string;
  readonly at: number;
  /** The task that emitted it, or `external`. */
  readonly by: string;
}

/** One join, stored: a task to run once all `names` have been emitted. */
export interface JoinRecord {
  readonly id: number;
  readonly names: readonly string[];
  readonly type: string;
  /** The join task's message, base64 (dropped once fired). */
  data?: string;
  /** The task that declared it. */
  readonly by: string;
  readonly at: number;
  /** The join task's id, once fired. */
  task?: string;
  /** What fired it: the task whose commit emitted the last name, or `event:<name>`. */
  firedBy?: string;
}

/** The whole state of a run. */
export interface RunState {
  readonly v: number;
  readonly workflow: string;
  readonly runId: string;
  status: RunStatus;
  readonly createdAt: number;
  updatedAt: number;
  finishedAt?: number;
  /** The last task id handed out (ids are "1", "2", …). */
  lastTask: number;
  readonly tasks: Record<string, TaskRecord>;
  readonly events: Record<string, EventRecord>;
  readonly joins: JoinRecord[];
  /** Why the run failed. */
  error?: string;
}

/** A next task a handler asked for. */
export interface NextRequest {
  readonly type: string;
  readonly data: Uint8Array;
  readonly delayMs: number;
}

/** An event a handler (or another system) emitted. */
export interface EmitRequest {
  readonly name: string;
  readonly type: string | undefined;
  readonly data: Uint8Array | undefined;
}

/** A join a handler declared. */
export interface JoinRequest {
  readonly names: readonly string[];
  readonly type: string;
  readonly data: Uint8Array;
}

/** Everything one handler asked for. */
export interface Requests {
  readonly next: readonly NextRequest[];
  readonly emits: readonly EmitRequest[];
  readonly joins: readonly JoinRequest[];
}

/** The id of a run's first task. */
export const FIRST_TASK = "1";

/** Who publishes the first task: the run's start. */
export const START = "start";

/** A new run whose first task, of `type`, is scheduled. */
export function newRun(workflow: string, runId: string, type: string, data: Uint8Array, now: number): RunState {
  return {
    v: STATE_VERSION,
    workflow,
    runId,
    status: "running",
    createdAt: now,
    updatedAt: now,
    lastTask: 1,
    tasks: { [FIRST_TASK]: { type, status: "scheduled", attempts: 0, scheduledAt: now, data: toBase64(data) } },
    events: {},
    joins: [],
  };
}

/** Marks `taskId` running for one more attempt; returns the attempt number. */
export function startAttempt(run: RunState, taskId: string, now: number): number {
  const task = taskIn(run, taskId);
  task.status = "running";
  task.attempts++;
  task.startedAt = now;
  run.updatedAt = now;
  return task.attempts;
}

/**
 * Commits what `taskId`'s handler asked for and marks it completed: its
 * next tasks are scheduled with the next ids, its events recorded, its joins
 * added, and every join whose events have now all been emitted fired. A
 * task already completed or failed is left alone (its first commit stands).
 * Returns whether anything changed.
 */
export function commitTask(run: RunState, taskId: string, requests: Requests, now: number): boolean {
  const task = taskIn(run, taskId);
  if (task.status === "completed" || task.status === "failed") return false;
  for (const next of requests.next) {
    const id = String(++run.lastTask);
    run.tasks[id] = {
      type: next.type,
      parent: taskId,
      status: "scheduled",
      attempts: 0,
      scheduledAt: now,
      ...(next.delayMs > 0 ? { notBefore: now + next.delayMs } : {}),
      data: toBase64(next.data),
    };
  }
  for (const emit of requests.emits) recordEvent(run, emit, taskId, now);
  for (const join of requests.joins) {
    run.joins.push({
      id: run.joins.length + 1,
      names: [...join.names],
      type: join.type,
      data: toBase64(join.data),
      by: taskId,
      at: now,
    });
  }
  fireJoins(run, taskId, now);
  task.status = "completed";
  task.finishedAt = now;
  delete task.data;
  delete task.error;
  settleStatus(run, now);
  return true;
}

/**
 * Records a failed attempt of `taskId`: given up on (`final`), the task and
 * the run fail; otherwise the task waits for its retry.
 */
export function failAttempt(run: RunState, taskId: string, error: string, final: boolean, now: number): void {
  const task = taskIn(run, taskId);
  if (task.status === "completed" || task.status === "failed") return;
  task.error = error;
  run.updatedAt = now;
  if (!final) {
    task.status = "scheduled";
    return;
  }
  task.status = "failed";
  task.finishedAt = now;
  delete task.data;
  if (run.status !== "failed") {
    run.status = "failed";
    run.error = `task ${taskId} (${task.type}) failed: ${error}`;
    run.finishedAt = now;
  }
}

/**
 * Records an event from outside the run (another system), firing the joins
 * it completes. Returns whether it was new (a name already emitted is kept).
 */
export function emitExternal(run: RunState, emit: EmitRequest, now: number): boolean {
  if (run.events[emit.name] !== undefined) return false;
  recordEvent(run, emit, "external", now);
  fireJoins(run, eventFirer(emit.name), now);
  settleStatus(run, now);
  return true;
}

/** What fired the joins an external event completed. */
export function eventFirer(name: string): string {
  return `event:${name}`;
}

/**
 * The tasks whose publication `by` (a task id, `event:<name>` or
 * {@link START}) is responsible for and that have not started yet: its next tasks
 * and the join tasks it fired. Publishing them again is safe: they are
 * published under their ids as idempotency keys.
 */
export function scheduledBy(run: RunState, by: string): string[] {
  const ids: string[] = [];
  const first = run.tasks[FIRST_TASK];
  if (by === START && first?.status === "scheduled" && first.attempts === 0) ids.push(FIRST_TASK);
  for (const [id, task] of Object.entries(run.tasks)) {
    if (task.status !== "scheduled" || task.attempts > 0) continue;
    if (task.parent === by) ids.push(id);
  }
  for (const join of run.joins) {
    if (join.firedBy !== by || join.task === undefined) continue;
    const task = run.tasks[join.task];
    if (task?.status === "scheduled" && task.attempts === 0) ids.push(join.task);
  }
  return ids;
}

/** The join that fired `taskId`, if a join did. */
export function joinOf(run: RunState, taskId: string): JoinRecord | undefined {
  const id = run.tasks[taskId]?.join;
  return id === undefined ? undefined : run.joins.find((j) => j.id === id);
}

function recordEvent(run: RunState, emit: EmitRequest, by: string, now: number): void {
  if (run.events[emit.name] !== undefined) return;
  run.events[emit.name] = {
    ...(emit.type === undefined ? {} : { type: emit.type }),
    ...(emit.data === undefined ? {} : { data: toBase64(emit.data) }),
    at: now,
    by,
  };
}

/** Fires every waiting join whose events have all been emitted; `by` is credited with it. */
function fireJoins(run: RunState, by: string, now: number): void {
  for (const join of run.joins) {
    if (join.task !== undefined || !join.names.every((name) => run.events[name] !== undefined)) continue;
    const id = String(++run.lastTask);
    run.tasks[id] = {
      type: join.type,
      join: join.id,
      status: "scheduled",
      attempts: 0,
      scheduledAt: now,
      ...(join.data === undefined ? {} : { data: join.data }),
    };
    join.task = id;
    join.firedBy = by;
    delete join.data;
  }
}

/** A running run with nothing scheduled, running or waiting is completed. */
function settleStatus(run: RunState, now: number): void {
  run.updatedAt = now;
  if (run.status !== "running") return;
  const busy = Object.values(run.tasks).some((t) => t.status === "scheduled" || t.status === "running");
  if (busy || run.joins.some((j) => j.task === undefined)) return;
  run.status = "completed";
  run.finishedAt = now;
}

function taskIn(run: RunState, taskId: string): TaskRecord {
  const task = run.tasks[taskId];
  if (task === undefined) {
    throw new WindshiftError(ErrorCode.NotFound, `run "${run.runId}" has no task ${taskId}`, {
      details: { runId: run.runId, taskId },
    });
  }
  return task;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The stored bytes of `run`. */
export function encodeRun(run: RunState): Uint8Array {
  return encoder.encode(JSON.stringify(run));
}

/** Reads a stored run; `INVALID_DATA` when it is not one this version understands. */
export function decodeRun(bytes: Uint8Array, runId: string): RunState {
  let run: RunState;
  try {
    run = JSON.parse(decoder.decode(bytes)) as RunState;
  } catch (err) {
    throw new WindshiftError(ErrorCode.InvalidData, `the state of run "${runId}" is not JSON`, { cause: err });
  }
  if (typeof run !== "object" || run === null || typeof run.tasks !== "object" || !Array.isArray(run.joins)) {
    throw new WindshiftError(ErrorCode.InvalidData, `the state of run "${runId}" is not a workflow run`);
  }
  if (run.v !== STATE_VERSION) {
    throw new WindshiftError(
      ErrorCode.InvalidData,
      `the state of run "${runId}" has format version ${String(run.v)}; this windshift reads version ${STATE_VERSION}`,
    );
  }
  return run;
}

/** Base64 of `bytes`. */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** The bytes of base64 `text` (empty for `undefined`). */
export function fromBase64(text: string | undefined): Uint8Array {
  return text === undefined ? new Uint8Array(0) : new Uint8Array(Buffer.from(text, "base64"));
}
