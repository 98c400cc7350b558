import type { DescMessage, Message, Registry } from "@bufbuild/protobuf";
import type { Decoder } from "../consume/options.js";
import type { ConsumerState, StreamState } from "../engines/engine.js";
import { ErrorCode, validationError, WindshiftError } from "../errors.js";
import { raceAbort, throwIfAborted } from "../internal/abort.js";
import { assertRegistry, assertSchema } from "../internal/codec.js";
import { assertName, assertSubject } from "../internal/names.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import * as v from "../internal/validate.js";
import type { Runtime } from "../runtime.js";
import { type ConsumerDescription, describeConsumer } from "../streams/consumers.js";
import { describeStream, type StreamOptions } from "../streams/streams.js";
import { type StoredEvent, StoredEventImpl } from "./stored-event.js";

/** Options every operation takes. */
export interface OperationOptions {
  /**
   * How long to wait for the engine's answer.
   * @default 5_000
   */
  readonly timeoutMs?: number;
  /** Cancels the call. A delete or purge may still have happened. */
  readonly signal?: AbortSignal;
}

/** The defaults of {@link OperationOptions}. */
export const operationDefaults: Defaults<OperationOptions> = Object.freeze({ timeoutMs: 5_000, signal: undefined });

/** What a stream holds now. */
export interface StreamInfoState {
  /** Events stored. */
  readonly events: number;
  /** Bytes stored, as the engine counts them. */
  readonly bytes: number;
  /** The first event's id (for an empty stream: the next id, or 0 when nothing was ever stored). */
  readonly firstId: number;
  /** When the first event was stored; `undefined` when the stream is empty. */
  readonly firstTime: Date | undefined;
  /** The last event's id (0 when nothing was ever stored). */
  readonly lastId: number;
  /** When the last event was stored; `undefined` when the stream is empty. */
  readonly lastTime: Date | undefined;
  /** Distinct subjects with events. */
  readonly subjects: number;
  /** Consumers of the stream, durable and ephemeral. */
  readonly consumers: number;
}

/** A stream: its configuration (as `ensureStream` takes it) and what it holds. */
export interface StreamInfo {
  /** The stream's name. */
  readonly name: string;
  /** Its configuration, in `ensureStream`'s options. */
  readonly config: Omit<StreamOptions, "signal">;
  /** What it holds now. */
  readonly state: StreamInfoState;
}

/** A consumer's progress. */
export interface ConsumerInfoState {
  /** Events for the consumer not delivered yet: its lag. */
  readonly pending: number;
  /** Delivered and waiting to be acked (or rejected). */
  readonly unsettled: number;
  /** Of those, delivered more than once. */
  readonly redelivered: number;
  /**
   * The id of the last event delivered; before the first delivery, the id
   * the consumer started after (0 from the start, the stream's last id then
   * from the end).
   */
  readonly lastDeliveredId: number;
  /** Every event up to this id is acked (or rejected for good): the ack floor (0: none yet). */
  readonly lastAckedId: number;
}

/** A consumer: its configuration (as `ensureConsumer` takes it) and its progress. */
export interface ConsumerInfo {
  /** The stream it reads. */
  readonly stream: string;
  /** The consumer's name. */
  readonly name: string;
  /** Whether it is durable (else ephemeral: the engine named it, and removes it when unused). */
  readonly durable: boolean;
  /** Its configuration, in `ensureConsumer`'s options. */
  readonly config: ConsumerDescription["config"];
  /** Its progress. */
  readonly state: ConsumerInfoState;
}

/** Options for `purgeStream`. Without any, every event is removed. */
export interface PurgeStreamOptions extends OperationOptions {
  /** Remove only events on this subject (wildcards allowed). */
  readonly subject?: string;
  /** Keep this many of the newest events (on `subject`, when given). */
  readonly keepLast?: number;
  /** Remove only events with ids below this one. Not with `keepLast`. */
  readonly upToId?: number;
}

/** What `purgeStream` did. */
export interface PurgeResult {
  /** How many events were removed. */
  readonly purged: number;
}

/** Options for `getEvent` and `getLastEvent`: how `data` is decoded, as for `subscribe`. */
export interface GetEventOptions<Desc extends DescMessage = DescMessage> extends OperationOptions {
  /** Decode `data` as this schema. */
  readonly schema?: Desc;
  /** Decode `data` by its type, looked up here. */
  readonly registry?: Registry;
}

const purgeDefaults: Defaults<PurgeStreamOptions> = Object.freeze({
  ...operationDefaults,
  subject: undefined,
  keepLast: undefined,
  upToId: undefined,
});

const getDefaults: Defaults<GetEventOptions> = Object.freeze({
  ...operationDefaults,
  schema: undefined,
  registry: undefined,
});

/**
 * Runs one engine call bounded by `timeoutMs` (`TIMEOUT`, on the engine's
 * clock) and `signal` (`ABORTED`).
 */
async function bounded<T>(
  rt: Runtime,
  options: { readonly timeoutMs: unknown; readonly signal: unknown },
  what: string,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const timeoutMs = v.durationMs("timeoutMs", options.timeoutMs, 1) as number;
  const signal = v.signal("signal", options.signal);
  throwIfAborted(signal);
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  let timedOut = false;
  const timer = rt.clock.setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  try {
    return await raceAbort(work(controller.signal), controller.signal);
  } catch (err) {
    if (timedOut) {
      throw new WindshiftError(ErrorCode.Timeout, `${what}: no answer in ${timeoutMs} ms`, { cause: err });
    }
    throw err;
  } finally {
    rt.clock.clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

function streamInfoOf(state: StreamState): StreamInfo {
  const c = state.contents;
  const date = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms));
  return {
    name: state.config.name,
    config: describeStream(state.config),
    state: {
      events: c.events,
      bytes: c.bytes,
      firstId: c.firstId,
      firstTime: date(c.firstTime),
      lastId: c.lastId,
      lastTime: date(c.lastTime),
      subjects: c.subjects,
      consumers: c.consumers,
    },
  };
}

function consumerInfoOf(state: ConsumerState): ConsumerInfo {
  return {
    stream: state.stream,
    name: state.name,
    durable: state.config.name !== undefined,
    config: describeConsumer(state.config),
    state: {
      pending: state.pending,
      unsettled: state.unsettled,
      redelivered: state.redelivered,
      lastDeliveredId: state.lastDeliveredId,
      lastAckedId: state.ackFloor,
    },
  };
}

/** See `Events.streamInfo`. */
export async function streamInfo(rt: Runtime, name: string, options?: OperationOptions): Promise<StreamInfo> {
  assertName("stream", name);
  const o = mergeOptions<OperationOptions>("options", options, operationDefaults);
  return streamInfoOf(await bounded(rt, o, `streamInfo("${name}")`, (s) => rt.engine.streamState(name, s)));
}

/** See `Events.listStreams`. */
export async function listStreams(rt: Runtime, options?: OperationOptions): Promise<StreamInfo[]> {
  const o = mergeOptions<OperationOptions>("options", options, operationDefaults);
  return (await bounded(rt, o, "listStreams()", (s) => rt.engine.listStreams(s))).map(streamInfoOf);
}

/** See `Events.deleteStream`. */
export async function deleteStream(rt: Runtime, name: string, options?: OperationOptions): Promise<void> {
  assertName("stream", name);
  const o = mergeOptions<OperationOptions>("options", options, operationDefaults);
  await bounded(rt, o, `deleteStream("${name}")`, (s) => rt.engine.deleteStream(name, s));
}

/** See `Events.purgeStream`. */
export async function purgeStream(rt: Runtime, name: string, options?: PurgeStreamOptions): Promise<PurgeResult> {
  assertName("stream", name);
  const o = mergeOptions<PurgeStreamOptions>("options", options, purgeDefaults);
  if (o.subject !== undefined) assertSubject("subject", o.subject, { wildcards: true });
  const keepLast = v.integer("keepLast", o.keepLast, 0);
  const upToId = v.integer("upToId", o.upToId, 1);
  if (keepLast !== undefined && upToId !== undefined) {
    throw validationError("keepLast", "cannot be given with upToId");
  }
  const purge = { subject: o.subject as string | undefined, keepLast, upToId };
  const purged = await bounded(rt, o, `purgeStream("${name}")`, (s) => rt.engine.purgeStream(name, purge, s));
  return { purged };
}

/** See `Events.consumerInfo`. */
export async function consumerInfo(
  rt: Runtime,
  stream: string,
  name: string,
  options?: OperationOptions,
): Promise<ConsumerInfo> {
  assertName("stream", stream);
  assertName("consumer", name);
  const o = mergeOptions<OperationOptions>("options", options, operationDefaults);
  const what = `consumerInfo("${stream}", "${name}")`;
  return consumerInfoOf(await bounded(rt, o, what, (s) => rt.engine.consumerState(stream, name, s)));
}

/** See `Events.listConsumers`. */
export async function listConsumers(rt: Runtime, stream: string, options?: OperationOptions): Promise<ConsumerInfo[]> {
  assertName("stream", stream);
  const o = mergeOptions<OperationOptions>("options", options, operationDefaults);
  const what = `listConsumers("${stream}")`;
  return (await bounded(rt, o, what, (s) => rt.engine.listConsumers(stream, s))).map(consumerInfoOf);
}

/** See `Events.deleteConsumer`. */
export async function deleteConsumer(
  rt: Runtime,
  stream: string,
  name: string,
  options?: OperationOptions,
): Promise<void> {
  assertName("stream", stream);
  assertName("consumer", name);
  const o = mergeOptions<OperationOptions>("options", options, operationDefaults);
  await bounded(rt, o, `deleteConsumer("${stream}", "${name}")`, (s) => rt.engine.deleteConsumer(stream, name, s));
}

function decoderOf(o: { readonly schema: unknown; readonly registry: unknown }): Decoder {
  if (o.schema !== undefined) {
    if (o.registry !== undefined) throw validationError("schema", "give schema or registry, not both");
    assertSchema("schema", o.schema);
    return { schema: o.schema };
  }
  if (o.registry !== undefined) {
    assertRegistry("registry", o.registry);
    return { registry: o.registry };
  }
  return undefined;
}

/** See `Events.getEvent`. */
export async function getEvent(
  rt: Runtime,
  stream: string,
  id: number,
  options?: GetEventOptions,
): Promise<StoredEvent<Message>> {
  assertName("stream", stream);
  v.integer("id", id, 1);
  const o = mergeOptions<GetEventOptions>("options", options, getDefaults);
  const decoder = decoderOf(o);
  const stored = await bounded(rt, o, `getEvent("${stream}", ${id})`, (s) => rt.engine.getEvent(stream, { id }, s));
  return new StoredEventImpl(stream, stored, decoder);
}

/** See `Events.getLastEvent`. */
export async function getLastEvent(
  rt: Runtime,
  stream: string,
  subject: string,
  options?: GetEventOptions,
): Promise<StoredEvent<Message>> {
  assertName("stream", stream);
  assertSubject("subject", subject);
  const o = mergeOptions<GetEventOptions>("options", options, getDefaults);
  const decoder = decoderOf(o);
  const what = `getLastEvent("${stream}", "${subject}")`;
  const stored = await bounded(rt, o, what, (s) => rt.engine.getEvent(stream, { lastOn: subject }, s));
  return new StoredEventImpl(stream, stored, decoder);
}
