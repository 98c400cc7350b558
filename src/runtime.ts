import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "./logger.js";
import { Publisher } from "./publisher.js";
import type { Telemetry } from "./telemetry.js";

/** What every operation needs: the connection, JetStream handles and the logger. */
export interface Runtime {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  /** The management API, created on first use. */
  jsm(): Promise<JetStreamManager>;
  /** The pipelined publisher, created on first use. */
  publisher(): Publisher;
}

/** Builds the shared {@link Runtime} for one connection. */
export function createRuntime(
  nc: NatsConnection,
  logger: Logger,
  telemetry: Telemetry,
  maxPublishesInFlight: number,
): Runtime {
  let manager: Promise<JetStreamManager> | undefined;
  let publisher: Publisher | undefined;
  return {
    nc,
    js: jetstream(nc),
    logger,
    telemetry,
    jsm() {
      // checkAPI: false saves a round trip; the first real call reports problems.
      manager ??= jetstreamManager(nc, { checkAPI: false });
      return manager;
    },
    publisher() {
      publisher ??= new Publisher(nc, maxPublishesInFlight);
      return publisher;
    },
  };
}

/** Milliseconds to the nanoseconds JetStream stores durations in. */
export function toNanos(ms: number): number {
  return ms * 1_000_000;
}

/** Nanoseconds from JetStream back to whole milliseconds. */
export function toMs(nanos: number): number {
  return Math.round(nanos / 1_000_000);
}
