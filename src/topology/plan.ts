import type { ConsumerConfig, ConsumerState, StreamConfig, StreamState } from "../engines/engine.js";
import { ErrorCode, isWindshiftError, validationError } from "../errors.js";
import type { Runtime } from "../runtime.js";
import { describeConsumer } from "../streams/consumers.js";
import { describeStream } from "../streams/streams.js";
import type { ResolvedTopology } from "./topology.js";

/** One field that an update changes. */
export interface FieldChange {
  /** The option's name, as in `ensureStream` / `ensureConsumer` (`maxAgeMs`, `sources`). */
  readonly field: string;
  /** Its value now (`undefined`: not set, the default). */
  readonly from: unknown;
  /** Its value after the change. */
  readonly to: unknown;
}

/** What a plan does to one stream or consumer. */
export interface TopologyChange {
  /** Whether it is a stream or a consumer. */
  readonly kind: "stream" | "consumer";
  /** The stream's or the consumer's name. */
  readonly name: string;
  /** The consumer's stream. */
  readonly stream?: string;
  /**
   * `create`, `update` (in place, `diff` says what), `unchanged`, `delete`
   * (only with `prune`), or `replace`: an update the engine cannot make in
   * place (`reason` says why); `apply` refuses a plan that has one.
   */
  readonly action: "create" | "update" | "unchanged" | "delete" | "replace";
  /** For `update` and `replace`: the fields that change. */
  readonly diff?: readonly FieldChange[];
  /** For `replace`: why it cannot be done in place. */
  readonly reason?: string;
}

/** What `plan` found: the changes that make the engine match a topology, in the order `apply` makes them. */
export interface TopologyPlan {
  /** One per stream and consumer declared (and, with `prune`, per one to delete). */
  readonly changes: readonly TopologyChange[];
}

/**
 * Streams that windshift manages itself: key-value buckets (`KV_…`) and the
 * task streams of workflows (`ensureWorkflow`'s `WORKFLOW_…`). Never pruned.
 */
const MANAGED_STREAM = /^(KV|WORKFLOW)_/;

/** Stream options that the engine cannot change on an existing stream. */
const FIXED_STREAM_FIELDS: Readonly<Record<string, string>> = {
  storage: "the storage of a stream cannot be changed in place: delete and recreate it (its events are lost)",
};

function diff(from: Record<string, unknown>, to: Record<string, unknown>): FieldChange[] {
  const changes: FieldChange[] = [];
  for (const field of new Set([...Object.keys(from), ...Object.keys(to)])) {
    if (JSON.stringify(from[field]) !== JSON.stringify(to[field]))
      changes.push({ field, from: from[field], to: to[field] });
  }
  return changes;
}

function streamChange(wanted: StreamConfig, current: StreamState | undefined): TopologyChange {
  const base = { kind: "stream", name: wanted.name } as const;
  if (current === undefined) return { ...base, action: "create" };
  const changes = diff(describeStream(current.config), describeStream(wanted));
  if (changes.length === 0) return { ...base, action: "unchanged" };
  const reason = changes.map((c) => FIXED_STREAM_FIELDS[c.field]).find((r) => r !== undefined);
  if (reason !== undefined) return { ...base, action: "replace", diff: changes, reason };
  return { ...base, action: "update", diff: changes };
}

/** A consumer's options that an update can change: its start position only counts when it is created. */
function updatable(config: ConsumerConfig): Record<string, unknown> {
  const { from: _from, ...rest } = describeConsumer(config);
  return rest;
}

function consumerChange(
  wanted: ConsumerConfig & { readonly stream: string; readonly name: string },
  current: ConsumerState | undefined,
): TopologyChange {
  const base = { kind: "consumer", name: wanted.name, stream: wanted.stream } as const;
  if (current === undefined) return { ...base, action: "create" };
  const changes = diff(updatable(current.config), updatable(wanted));
  return changes.length === 0 ? { ...base, action: "unchanged" } : { ...base, action: "update", diff: changes };
}

async function orMissing<T>(work: Promise<T>): Promise<T | undefined> {
  try {
    return await work;
  } catch (err) {
    if (isWindshiftError(err, ErrorCode.NotFound)) return undefined;
    throw err;
  }
}

/**
 * Compares `topology` with what the engine holds, touching nothing. With
 * `prune`, streams and durable consumers that the topology does not declare
 * are deleted (consumers only of declared streams; never the streams
 * windshift manages, `KV_…` and `WORKFLOW_…`, nor ephemeral consumers).
 */
export async function planTopology(
  rt: Runtime,
  topology: ResolvedTopology,
  prune: boolean,
  signal: AbortSignal | undefined,
): Promise<TopologyPlan> {
  const streams = new Map((await rt.engine.listStreams(signal)).map((s) => [s.config.name, s]));
  const changes: TopologyChange[] = topology.streams.map((s) => streamChange(s, streams.get(s.name)));
  const declared = new Set(topology.streams.map((s) => s.name));
  const consumersOf = new Map<string, Map<string, ConsumerState>>();
  for (const stream of new Set(topology.consumers.map((c) => c.stream))) {
    const listed = streams.has(stream) ? await orMissing(rt.engine.listConsumers(stream, signal)) : undefined;
    consumersOf.set(stream, new Map((listed ?? []).map((c) => [c.name, c])));
  }
  topology.consumers.forEach((c, i) => {
    // Found now, not halfway through an apply.
    if (!declared.has(c.stream) && !streams.has(c.stream)) {
      throw validationError(`consumers[${i}].stream`, `"${c.stream}" is neither declared nor an existing stream`);
    }
    changes.push(consumerChange(c, consumersOf.get(c.stream)?.get(c.name)));
  });
  if (!prune) return { changes };
  const wanted = new Set(topology.consumers.map((c) => `${c.stream}/${c.name}`));
  for (const stream of declared) {
    if (!streams.has(stream)) continue;
    const listed =
      consumersOf.get(stream) ?? new Map((await rt.engine.listConsumers(stream, signal)).map((c) => [c.name, c]));
    for (const c of listed.values()) {
      // Ephemeral consumers come and go with their subscribers.
      if (c.config.name === undefined || wanted.has(`${stream}/${c.name}`)) continue;
      changes.push({ kind: "consumer", name: c.name, stream, action: "delete" });
    }
  }
  for (const name of streams.keys()) {
    if (declared.has(name) || MANAGED_STREAM.test(name)) continue;
    changes.push({ kind: "stream", name, action: "delete" });
  }
  return { changes };
}
