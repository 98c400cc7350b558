import type { NatsConnection } from "@nats-io/nats-core";
import { createJetStreamEngine } from "../engines/jetstream/engine.js";
import { validationError } from "../errors.js";
import { describe } from "../internal/names.js";
import { createClient } from "./client.js";
import type { Events } from "./events.js";
import { type EventsOptions, resolveEventsOptions } from "./options.js";

/**
 * Creates the events client over a NATS connection you own (from
 * `@nats-io/transport-node` or any nats.js v3 transport), on NATS JetStream.
 * Closing the connection remains your job.
 *
 * @example
 * ```ts
 * import { connect } from "@nats-io/transport-node";
 * import { createEvents } from "windshift";
 *
 * const nc = await connect({ servers: "127.0.0.1:4222" });
 * const events = createEvents(nc);
 * ```
 */
export function createEvents(nc: NatsConnection, options?: EventsOptions): Events {
  const conn = nc as Partial<NatsConnection> | null | undefined;
  if (typeof conn !== "object" || conn === null || typeof conn.request !== "function") {
    throw validationError("nc", `${describe(nc)} is not a NATS connection`);
  }
  const settings = resolveEventsOptions(options);
  const engine = createJetStreamEngine(nc, {
    logger: settings.logger,
    maxPublishesInFlight: settings.maxPublishesInFlight,
  });
  return createClient(engine, settings);
}
