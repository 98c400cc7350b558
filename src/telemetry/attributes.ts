import type { Attributes } from "@opentelemetry/api";
import type { ConnectionFacts } from "../engines/engine.js";
import { isWindshiftError } from "../errors.js";

/**
 * Attribute names from the OpenTelemetry messaging semantic conventions
 * (v1.44), plus a few of our own under `messaging.nats.*` and `windshift.*`.
 */
export const Attr = {
  System: "messaging.system",
  OperationType: "messaging.operation.type",
  OperationName: "messaging.operation.name",
  Destination: "messaging.destination.name",
  DestinationTemplate: "messaging.destination.template",
  Subscription: "messaging.destination.subscription.name",
  ClientId: "messaging.client.id",
  MessageId: "messaging.message.id",
  BodySize: "messaging.message.body.size",
  ServerAddress: "server.address",
  ServerPort: "server.port",
  ErrorType: "error.type",
  Stream: "messaging.nats.stream",
  DeliveryAttempt: "messaging.nats.delivery_attempt",
  DataType: "windshift.data_type",
  Duplicate: "windshift.duplicate",
} as const;

/** `messaging.system`, `messaging.client.id`, `server.address` and `server.port` of an engine's connection. */
export function connectionAttributes(facts: ConnectionFacts): Attributes {
  const attrs: Attributes = { [Attr.System]: facts.system };
  if (facts.clientId !== undefined) attrs[Attr.ClientId] = facts.clientId;
  if (facts.serverAddress !== undefined) attrs[Attr.ServerAddress] = facts.serverAddress;
  if (facts.serverPort !== undefined) attrs[Attr.ServerPort] = facts.serverPort;
  return attrs;
}

/** The low-cardinality `error.type` of a failure: the windshift code, else the error's name. */
export function errorType(err: unknown): string {
  if (isWindshiftError(err)) return err.code;
  if (err instanceof Error && err.name) return err.name;
  return "_OTHER";
}
