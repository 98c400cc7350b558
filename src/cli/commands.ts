/**
 * The CLI's commands: their words, arguments, options and help. Each
 * command's code is imported when it runs, so that `--help` and a wrong
 * command line answer without loading the client, nats.js or the parsers.
 *
 * @module
 */

import type { Command } from "./command.js";

/** `windshift apply FILE`. */
export const applyCommand: Command = {
  words: ["apply"],
  args: ["FILE"],
  summary: "make streams and consumers match a topology file (YAML or JSON)",
  description: [
    "Reads the streams and durable consumers declared in FILE (.yaml, .yml or .json, with the option",
    "names of ensureStream and ensureConsumer), prints the plan (one line per change: action, kind,",
    "name, and the fields an update changes), then carries it out. A change that cannot be made in",
    "place (a stream's storage) is refused before anything is changed.",
  ].join("\n"),
  options: {
    "dry-run": { type: "boolean", help: "only print the plan" },
    prune: {
      type: "boolean",
      help: "also delete streams, and durable consumers of declared streams, that FILE does not declare",
    },
  },
  run: async (ctx) => (await import("./commands/apply.js")).apply(ctx),
};

/** `windshift streams`. */
export const streamsCommand: Command = {
  words: ["streams"],
  args: [],
  summary: "list the streams: subjects, events, bytes, last event time",
  description: [
    "Lists every stream on the server, the key-value buckets' KV_ streams included. --json prints",
    "an array of { name, subjects, events, bytes, firstId, firstTime, lastId, lastTime,",
    "distinctSubjects, consumers, config }.",
  ].join("\n"),
  options: {},
  run: async (ctx) => (await import("./commands/streams.js")).streams(ctx),
};

/** `windshift consumers STREAM`. */
export const consumersCommand: Command = {
  words: ["consumers"],
  args: ["STREAM"],
  summary: "list a stream's consumers: lag, waiting for ack, redelivered",
  description: [
    "Lists the consumers of STREAM with their progress: LAG (events not delivered yet), UNACKED",
    "(delivered, waiting for an ack), REDELIVERED (of those, delivered more than once), and the",
    "last delivered and last acked ids. --json prints an array of { stream, name, pending,",
    "unsettled, redelivered, lastDeliveredId, lastAckedId, config }.",
  ].join("\n"),
  options: {},
  run: async (ctx) => (await import("./commands/streams.js")).consumers(ctx),
};

/** `windshift tail STREAM`. */
export const tailCommand: Command = {
  words: ["tail"],
  args: ["STREAM"],
  summary: "follow a stream, printing each event decoded",
  description: [
    "Follows STREAM through an ephemeral consumer, removed when tail ends (after --limit events, or",
    "on Ctrl-C). Each event is printed on one line: id, time it occurred, subject, type, idempotency",
    "key, and its data in Protobuf JSON form when --descriptors knows its type (else base64).",
    "--json prints one object per line: { id, subject, type, occurredAt, idempotencyKey, data,",
    "decoded, headers } (data is the base64 payload when decoded is false).",
  ].join("\n"),
  options: {
    subject: { type: "string", value: "SUBJECT", help: "only events on this subject (wildcards allowed)" },
    from: {
      type: "string",
      value: "start|end|ID|TIME",
      help: "where to start: the first event, new events only (default), an event id, or a time",
    },
    limit: { type: "string", value: "N", help: "stop after N events" },
    descriptors: {
      type: "string",
      value: "FILE",
      help: "message types: a Buf image or FileDescriptorSet (buf build -o image.binpb)",
    },
  },
  follows: true,
  run: async (ctx) => (await import("./commands/tail.js")).tail(ctx),
};

/** `windshift get STREAM ID`. */
export const getCommand: Command = {
  words: ["get"],
  args: ["STREAM", "ID"],
  summary: "read one event back, decoded",
  description: [
    "Prints event ID of STREAM: its subject, type, times, idempotency key, headers, and its data in",
    "Protobuf JSON form when --descriptors knows its type (else base64). --json prints { id,",
    "subject, type, occurredAt, idempotencyKey, stream, storedAt, data, decoded, headers }.",
  ].join("\n"),
  options: {
    descriptors: {
      type: "string",
      value: "FILE",
      help: "message types: a Buf image or FileDescriptorSet (buf build -o image.binpb)",
    },
  },
  run: async (ctx) => (await import("./commands/get.js")).get(ctx),
};

/** `windshift publish SUBJECT`. */
export const publishCommand: Command = {
  words: ["publish"],
  args: ["SUBJECT"],
  summary: "publish one event: JSON data encoded as a Protobuf type",
  description: [
    "Encodes --data (Protobuf JSON) as the message type --type, found in --descriptors, and",
    "publishes it to SUBJECT with windshift's headers, as events.publish does. With --key the",
    "stream drops a second event with the same key inside its deduplication window. Prints the",
    "event's id; --json prints { id, stream, duplicate }.",
  ].join("\n"),
  options: {
    type: { type: "string", value: "TYPE", help: "the full Protobuf type name (shop.v1.OrderCreated)" },
    data: { type: "string", value: "JSON", help: "the message in Protobuf JSON form" },
    descriptors: {
      type: "string",
      value: "FILE",
      help: "message types: a Buf image or FileDescriptorSet (buf build -o image.binpb)",
    },
    key: { type: "string", value: "KEY", help: "the idempotency key" },
  },
  run: async (ctx) => (await import("./commands/publish.js")).publish(ctx),
};

/** `windshift dlq replay STREAM`. */
export const dlqReplayCommand: Command = {
  words: ["dlq", "replay"],
  args: ["STREAM"],
  summary: "publish a dead-letter stream's events to their original subjects again",
  description: [
    "Replays the dead letters stored in STREAM (the stream that captures a processor's",
    "deadLetter.subject), oldest first, as events.replayDeadLetters does: each is published to its",
    "original subject with its payload and headers, then deleted from STREAM. Dead letters whose",
    "idempotency key the original stream still remembers stay, and are listed. --json prints",
    "{ replayed, duplicates, skipped }.",
  ].join("\n"),
  options: {
    limit: { type: "string", value: "N", help: "replay at most N dead letters" },
  },
  run: async (ctx) => (await import("./commands/dlq.js")).replayDeadLetters(ctx),
};

/** `windshift top`. */
export const topCommand: Command = {
  words: ["top"],
  args: [],
  summary: "a live view of streams and consumers: rates, lag, redeliveries",
  description: [
    "Refreshes every --interval ms until Ctrl-C: each stream's events, bytes and events/s, and each",
    "consumer's lag, unacked and redelivered events and acks/s (events settled per second, for",
    "consumers of every subject of their stream). On a terminal the view is redrawn in place;",
    "otherwise each refresh is appended. --json prints one object per refresh.",
  ].join("\n"),
  options: {
    interval: { type: "string", value: "MS", help: "milliseconds between refreshes (default 2000, at least 100)" },
  },
  follows: true,
  run: async (ctx) => (await import("./commands/top.js")).top(ctx),
};

/** `windshift workflow show NAME RUN_ID`. */
export const workflowShowCommand: Command = {
  words: ["workflow", "show"],
  args: ["NAME", "RUN_ID"],
  summary: "show a workflow run: status, tasks, and a Mermaid diagram",
  description: [
    "Prints run RUN_ID of workflow NAME as inspectWorkflow reports it: its status, a table of its",
    "tasks, its joins and events, then the run as a Mermaid flowchart (toMermaid). --json prints",
    "the run with its diagram under mermaid.",
  ].join("\n"),
  options: {},
  run: async (ctx) => (await import("./commands/workflow.js")).showWorkflow(ctx),
};

/** Every command, in the order `--help` lists them. */
export const commands: readonly Command[] = [
  applyCommand,
  streamsCommand,
  consumersCommand,
  tailCommand,
  getCommand,
  publishCommand,
  dlqReplayCommand,
  topCommand,
  workflowShowCommand,
];
