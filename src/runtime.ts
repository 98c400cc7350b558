import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "./logger.js";
import { Requester } from "./requester.js";
import type { Telemetry } from "./telemetry.js";

/** What every operation needs: the connection, JetStream handles and the logger. */
export interface Runtime {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  /** The management API, created on first use. */
  jsm(): Promise<JetStreamManager>;
  /** Request/reply for publishes (bounded by `maxPublishesInFlight`), created on first use. */
  requester(): Requester;
  /**
   * Request/reply for confirmed settlements, apart from publishes so that acks
   * never queue behind a full publish window. Created on first use.
   */
  settleRequester(): Requester;
}

/** Builds the shared {@link Runtime} for one connection. */
export function createRuntime(
  nc: NatsConnection,
  logger: Logger,
  telemetry: Telemetry,
  maxPublishesInFlight: number,
): Runtime {
  let manager: Promise<JetStreamManager> | undefined;
  let requester: Requester | undefined;
  let settleRequester: Requester | undefined;
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
    requester() {
      requester ??= new Requester(nc, maxPublishesInFlight);
      return requester;
    },
    settleRequester() {
      // The server's max ack pending already bounds how many can be in flight.
      settleRequester ??= new Requester(nc, Number.MAX_SAFE_INTEGER, true);
      return settleRequester;
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
