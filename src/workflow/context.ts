import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { Event } from "../consume/event.js";
import { ErrorCode, validationError, WindshiftError } from "../errors.js";
import { assertSchema, decode, encode } from "../internal/codec.js";
import { describe } from "../internal/names.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import * as v from "../internal/validate.js";
import type { RuleCheck } from "../validation/rules.js";
import {
  type EmitRequest,
  type EventRecord,
  fromBase64,
  type JoinRequest,
  type NextRequest,
  type Requests,
} from "./run-state.js";

/** Options of {@link TaskContext.next}. */
export interface NextOptions {
  /**
   * Run the task no sooner than this many milliseconds after the handler
   * returns.
   * @default 0
   */
  readonly delayMs?: number;
}

/** The defaults of {@link NextOptions}. */
const nextDefaults: Defaults<NextOptions> = Object.freeze({ delayMs: 0 });

/** An event emitted in a run, as a join task sees it. */
export interface WorkflowEvent {
  /** The event's name. */
  readonly name: string;
  /** The full Protobuf type name of its data; `undefined` for an event without data. */
  readonly type: string | undefined;
  /** Its data, encoded (empty without data). */
  readonly payload: Uint8Array;
  /** When it was emitted. */
  readonly emittedAt: Date;
  /** The id of the task that emitted it, or `"external"` for `emitWorkflowEvent`. */
  readonly emittedBy: string;
  /** Decodes the data as `schema`; `INVALID_DATA` when the type differs or it has no data. */
  decode<Desc extends DescMessage>(schema: Desc): MessageShape<Desc>;
}

/** The events that fired a join task (empty for other tasks). */
export interface WorkflowEvents {
  /** The names, in the order the join listed them. */
  readonly names: readonly string[];
  /** Whether event `name` is among them. */
  has(name: string): boolean;
  /** The event `name`, or `undefined`. */
  get(name: string): WorkflowEvent | undefined;
  /** The data of event `name` decoded as `schema`, or `undefined` when there is no such event. */
  get<Desc extends DescMessage>(name: string, schema: Desc): MessageShape<Desc> | undefined;
}

/**
 * What a task's handler works with: who it is, and the calls that schedule
 * what comes next. The requests are committed once, when the handler
 * returns; a handler that throws has asked for nothing.
 */
export interface TaskContext {
  /** The workflow's name. */
  readonly workflow: string;
  /** The run this task belongs to. */
  readonly runId: string;
  /** The task's id within the run: `"1"` for the first task, then in the order tasks were scheduled. */
  readonly taskId: string;
  /** Which attempt at the task this is, from 1. */
  readonly attempt: number;
  /** Aborted when the worker stops waiting for this handler (it is closing): stop the work. */
  readonly signal: AbortSignal;
  /** The task event as delivered (headers, trace context, delivery attempt). */
  readonly event: Event;
  /** For a join task, the events that fired it. */
  readonly events: WorkflowEvents;
  /** Schedules task `schema` with `data` (a fork when called more than once). */
  next<Desc extends DescMessage>(
    schema: Desc,
    data: MessageInitShape<Desc> | MessageShape<Desc>,
    options?: NextOptions,
  ): void;
  /** Emits the run-scoped event `name`, with data when `schema` and `data` are given. */
  emit(name: string): void;
  /** Emits the run-scoped event `name` with a message of `schema`, which join tasks read with `ctx.events.get`. */
  emit<Desc extends DescMessage>(name: string, schema: Desc, data: MessageInitShape<Desc> | MessageShape<Desc>): void;
  /**
   * Runs task `schema` with `data` once every event in `names` has been
   * emitted in this run, in any order, also when some were emitted before
   * this call.
   */
  join<Desc extends DescMessage>(
    names: readonly string[],
    schema: Desc,
    data: MessageInitShape<Desc> | MessageShape<Desc>,
  ): void;
}

/** The most events one join may wait for. */
const MAX_JOIN_NAMES = 100;
const EVENT_NAME = /^[A-Za-z0-9_.:-]{1,200}$/;

/** Throws a validation error unless `name` is a valid run-scoped event name. */
export function assertEventName(field: string, name: unknown): asserts name is string {
  if (typeof name !== "string" || !EVENT_NAME.test(name)) {
    throw validationError(
      field,
      `${describe(name)} is not a valid event name (1-200 characters of A-Z, a-z, 0-9, _ . : -)`,
    );
  }
}

/** Checks an emit's arguments and encodes its data (checked against its rules with `check`). */
export function emitRequest(name: unknown, schema: unknown, data: unknown, check?: RuleCheck): EmitRequest {
  assertEventName("name", name);
  if (schema === undefined) {
    if (data !== undefined) throw validationError("schema", "is required when data is given");
    return { name, type: undefined, data: undefined };
  }
  assertSchema("schema", schema);
  return { name, type: schema.typeName, data: encode(schema, (data ?? {}) as MessageInitShape<DescMessage>, check) };
}

/** The identity of the task a context is for. */
export type TaskIdentity = Pick<TaskContext, "runId" | "taskId" | "attempt" | "signal" | "event" | "events">;

/** A context that collects a handler's requests until it returns. */
export class TaskContextImpl implements TaskContext {
  readonly workflow: string;
  readonly runId: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly signal: AbortSignal;
  readonly event: Event;
  readonly events: WorkflowEvents;
  /** The task type of a schema, checked to be one of the workflow's. */
  readonly #taskType: (schema: unknown) => string;
  /** Checks requested data against its rules (the client's `validate` option). */
  readonly #check: RuleCheck | undefined;
  readonly #next: NextRequest[] = [];
  readonly #emits: EmitRequest[] = [];
  readonly #joins: JoinRequest[] = [];
  #done = false;

  /**
   * `taskType` names a schema's task type, or throws when the workflow has no
   * such task; `check`, when given, checks requested data against its rules.
   */
  constructor(
    workflow: string,
    taskType: (schema: unknown) => string,
    identity: TaskIdentity,
    check: RuleCheck | undefined,
  ) {
    this.#taskType = taskType;
    this.#check = check;
    this.workflow = workflow;
    this.runId = identity.runId;
    this.taskId = identity.taskId;
    this.attempt = identity.attempt;
    this.signal = identity.signal;
    this.event = identity.event;
    this.events = identity.events;
  }

  next<Desc extends DescMessage>(
    schema: Desc,
    data: MessageInitShape<Desc> | MessageShape<Desc>,
    options?: NextOptions,
  ): void {
    this.#open("next");
    const type = this.#taskType(schema);
    const o = mergeOptions<NextOptions>("options", options, nextDefaults);
    const delayMs = v.durationMs("delayMs", o.delayMs) as number;
    this.#next.push({ type, data: encode(schema, data, this.#check), delayMs });
  }

  emit(name: string, schema?: DescMessage, data?: unknown): void {
    this.#open("emit");
    this.#emits.push(emitRequest(name, schema, data, this.#check));
  }

  join<Desc extends DescMessage>(
    names: readonly string[],
    schema: Desc,
    data: MessageInitShape<Desc> | MessageShape<Desc>,
  ): void {
    this.#open("join");
    if (!Array.isArray(names) || names.length === 0 || names.length > MAX_JOIN_NAMES) {
      throw validationError("names", `must be an array of 1-${MAX_JOIN_NAMES} event names`);
    }
    names.forEach((name: unknown, i) => {
      assertEventName(`names[${i}]`, name);
    });
    if (new Set(names).size !== names.length) throw validationError("names", "lists an event twice");
    const type = this.#taskType(schema);
    this.#joins.push({ names: [...names], type, data: encode(schema, data, this.#check) });
  }

  /** The requests, once the handler returned; the context refuses further calls. */
  finish(): Requests {
    this.#done = true;
    return { next: this.#next, emits: this.#emits, joins: this.#joins };
  }

  #open(call: string): void {
    if (this.#done) {
      throw validationError(call, `called after the handler of task ${this.taskId} returned; call it before returning`);
    }
  }
}

/** The events of `names` in a run, for a join task. */
export function joinEvents(names: readonly string[], events: Readonly<Record<string, EventRecord>>): WorkflowEvents {
  const found = new Map<string, WorkflowEvent>();
  for (const name of names) {
    const record = events[name];
    if (record !== undefined) found.set(name, storedEvent(name, record));
  }
  const get = (name: string, schema?: DescMessage): unknown => {
    const event = found.get(name);
    return schema === undefined || event === undefined ? event : event.decode(schema);
  };
  return {
    names: [...found.keys()],
    has: (name) => found.has(name),
    get: get as WorkflowEvents["get"],
  };
}

/** No events: what a task that no join fired sees. */
export const NO_EVENTS: WorkflowEvents = joinEvents([], {});

function storedEvent(name: string, record: EventRecord): WorkflowEvent {
  const payload = fromBase64(record.data);
  return {
    name,
    type: record.type,
    payload,
    emittedAt: new Date(record.at),
    emittedBy: record.by,
    decode<Desc extends DescMessage>(schema: Desc): MessageShape<Desc> {
      assertSchema("schema", schema);
      if (record.type !== schema.typeName) {
        throw new WindshiftError(
          ErrorCode.InvalidData,
          record.type === undefined
            ? `event "${name}" has no data`
            : `event "${name}" holds a ${record.type}, not ${schema.typeName}`,
          { details: { name, expected: schema.typeName, actual: record.type ?? "" } },
        );
      }
      return decode(schema, payload);
    },
  };
}
