import type { ConsumerConfig, StreamConfig } from "../engines/engine.js";
import { ErrorCode, isWindshiftError, validationError, WindshiftError } from "../errors.js";
import { assertName, describe } from "../internal/names.js";
import { type ConsumerOptions, resolveConsumerConfig } from "../streams/consumers.js";
import { resolveStreamConfig, type StreamOptions } from "../streams/streams.js";

/** A stream in a topology: `ensureStream`'s options and its name. */
export type StreamDeclaration = Omit<StreamOptions, "signal"> & {
  /** The stream's name. */
  readonly name: string;
};

/** A durable consumer in a topology: `ensureConsumer`'s options, its stream and its name. */
export type ConsumerDeclaration = Omit<ConsumerOptions, "signal" | "name"> & {
  /** The stream it reads. */
  readonly stream: string;
  /** The consumer's name. */
  readonly name: string;
};

/**
 * Streams and durable consumers declared as plain data, with the option
 * names of `ensureStream` and `ensureConsumer`: what `plan` and `apply`
 * take, and what a `windshift.yaml` holds.
 *
 * @example
 * ```ts
 * const topology: Topology = {
 *   streams: [{ name: "orders", subjects: ["orders.>"], maxAgeMs: 604_800_000 }],
 *   consumers: [{ stream: "orders", name: "billing", from: { start: true } }],
 * };
 * ```
 */
export interface Topology {
  /** The streams, each created or updated before the consumers. */
  readonly streams?: readonly StreamDeclaration[];
  /** The durable consumers. */
  readonly consumers?: readonly ConsumerDeclaration[];
}

/** A topology validated into whole configurations. */
export interface ResolvedTopology {
  readonly streams: readonly StreamConfig[];
  readonly consumers: readonly (ConsumerConfig & { readonly stream: string; readonly name: string })[];
}

/** Re-raises a validation error of one declaration with its path (`streams[1].maxAgeMs`). */
function atPath<T>(path: string, work: () => T): T {
  try {
    return work();
  } catch (err) {
    if (!isWindshiftError(err, ErrorCode.Validation)) throw err;
    const field = typeof err.details.field === "string" ? err.details.field : undefined;
    if (field === undefined) throw validationError(path, err.message);
    const message = err.message.startsWith(`${field}: `) ? err.message.slice(field.length + 2) : err.message;
    // The options object of a declaration is the declaration itself.
    const rest = field === "options" ? "" : `.${field.replace(/^options\./, "")}`;
    throw validationError(`${path}${rest}`, message);
  }
}

function list(value: unknown, field: string): readonly unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw validationError(field, `${describe(value)} is not a list`);
  return value;
}

function record(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw validationError(field, `${describe(value)} is not an object`);
  }
  return value as Record<string, unknown>;
}

/**
 * Validates `topology` into whole configurations, with errors that name the
 * path and field (`streams[1].maxAgeMs: …`), and, when `source` is given,
 * the file (`windshift.yaml: streams[1].maxAgeMs: …`).
 */
export function resolveTopology(topology: unknown, source?: string): ResolvedTopology {
  try {
    return resolve(topology);
  } catch (err) {
    if (source === undefined || !isWindshiftError(err, ErrorCode.Validation)) throw err;
    throw new WindshiftError(ErrorCode.Validation, `${source}: ${err.message}`, {
      details: { ...err.details, file: source },
    });
  }
}

function resolve(topology: unknown): ResolvedTopology {
  const top = record(topology, "topology");
  for (const key of Object.keys(top)) {
    if (key !== "streams" && key !== "consumers") throw validationError(key, 'is not "streams" or "consumers"');
  }
  const streams = list(top.streams, "streams").map((item, i) =>
    atPath(`streams[${i}]`, () => {
      const { name, ...options } = record(item, "options");
      if (name === undefined) throw validationError("name", "is required");
      assertName("name", name);
      return resolveStreamConfig(name, options);
    }),
  );
  const names = new Set<string>();
  streams.forEach((s, i) => {
    if (names.has(s.name)) throw validationError(`streams[${i}].name`, `"${s.name}" is declared twice`);
    names.add(s.name);
  });
  const consumers = list(top.consumers, "consumers").map((item, i) =>
    atPath(`consumers[${i}]`, () => {
      const { stream, ...options } = record(item, "options");
      if (stream === undefined) throw validationError("stream", "is required");
      if (options.name === undefined)
        throw validationError("name", "is required (a topology declares durable consumers)");
      const config = resolveConsumerConfig(stream as string, options);
      return { ...config, stream: stream as string, name: config.name as string };
    }),
  );
  const keys = new Set<string>();
  consumers.forEach((c, i) => {
    const key = `${c.stream}/${c.name}`;
    if (keys.has(key)) throw validationError(`consumers[${i}].name`, `"${c.name}" on "${c.stream}" is declared twice`);
    keys.add(key);
  });
  return { streams, consumers };
}
